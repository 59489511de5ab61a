# The scoring service: gunicorn + the Flask app + the committed, gated model.
#   docker build -t fraud-api . && docker run -p 8000:8000 fraud-api
# Only the serving dependencies (requirements-serve.txt: no xgboost, pandas, scikit-learn,
# DVC or Hydra) and only the files serving reads (.dockerignore lists them) go in.
# tests/delivery/test_docker.py lints this file and runs its CMD from a venv of requirements-serve.txt.
# The builder is the full image of the runtime's Python (it has a C compiler, for the tree
# kernel fraud/runtime/_treewalk.c); its venv and the kernel are copied into the slim runtime, so both
# stages take their Python from the one PYTHON_VERSION.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-serve.txt /tmp/requirements-serve.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-serve.txt
WORKDIR /build
COPY fraud/ fraud/
RUN python -m fraud.runtime.native

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY app/ app/
COPY fraud/ fraud/
COPY --from=builder /build/fraud/runtime/_treewalk.so fraud/runtime/_treewalk.so
COPY models/ models/
COPY data/selected_features.json data/selected_features.json
COPY scripts/healthcheck.py scripts/healthcheck.py
# the embedded feature store's directory (FEATURE_STORE_URL's default), the one place the
# service writes; on App Platform set FEATURE_STORE_URL to a managed Valkey instead
RUN python -m compileall -q app fraud \
    && mkdir -p data/online \
    && chown 10001:10001 data/online
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "scripts/healthcheck.py"]
CMD ["gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
