"""The service's Flask blueprint: health, model facts, metrics and the API document.

The scoring endpoints are answered in front of Flask, by ``app.predict``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from app.openapi import openapi_document
from app.predict import now
from app.schemas import sample_transaction
from fraud.store.errors import StoreUnavailableError

bp = Blueprint("fraud", __name__)
#: Set in a worker that got SIGTERM and serves out its drain (``app/gunicorn.conf.py``).
DRAINING = threading.Event()


def _state() -> Any:
    return current_app.extensions["fraud"]


@bp.before_app_request
def _start_timer() -> None:
    g.started = time.perf_counter()


@bp.after_app_request
def _record_request(response: Response) -> Response:
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    started = g.get("started", time.perf_counter())
    _state().metrics.observe_request(rule, response.status_code, time.perf_counter() - started)
    return response


@bp.get("/health")
def health() -> Response:
    """Liveness and basic facts."""
    state = _state()
    return jsonify(
        {
            "status": "ok",
            "timestamp": now(),
            "model_loaded": state.scorer is not None,
            "version": state.scorer.version,
            "uptime_seconds": round(time.time() - state.started, 3),
        }
    )


def readiness(state: Any) -> tuple[dict[str, Any], int]:
    """(body, status) of /ready: 200 with the model version once the model is loaded and
    verified (``create_app`` raises otherwise, so the worker never boots) and the online store
    answers; 503 naming the store when it does not; 503 while the worker drains before
    shutting down. /v2/health/ready answers the same."""
    store = state.store
    out: dict[str, Any] = {"ready": True, "version": state.scorer.version, "feature_store": None}
    if DRAINING.is_set():
        out |= {"ready": False, "error": "shutting down: draining connections"}
        return out, 503
    if store is not None:
        out["feature_store"] = store.name
        try:
            store.ping()
        except StoreUnavailableError as exc:
            out |= {"ready": False, "error": str(exc)}
            return out, 503
    return out, 200


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    """Readiness (``readiness``): the model is verified and the feature store answers."""
    out, status = readiness(_state())
    return jsonify(out), status


@bp.get("/model/info")
def model_info() -> Response:
    """Facts from the verified manifest."""
    manifest = _state().manifest
    return jsonify(
        {
            "version": _state().scorer.version,
            "sha256": manifest.get("sha256"),
            "kind": manifest.get("kind"),
            "env": manifest.get("env"),
            "train_period": manifest.get("train_period"),
            "threshold": manifest.get("threshold"),
            "features": manifest.get("features"),
            "test_metrics": manifest.get("test_metrics"),
            "params_hash": manifest.get("params_hash"),
            "library_versions": manifest.get("library_versions"),
        }
    )


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    payload, content_type = _state().metrics.render()
    return Response(payload, content_type=content_type)


@bp.get("/openapi.json")
def openapi() -> Response:
    """OpenAPI 3.0 document generated from the validator's field specs."""
    state = _state()
    max_batch = int(current_app.config["MAX_BATCH"])
    return jsonify(openapi_document(state.validate.fields, state.scorer.version, max_batch))


@bp.get("/sample-transaction")
def sample() -> Response:
    """A valid example body for POST /predict: a raw transaction now, with a fresh id, when
    the service keeps an online store (its history comes from there), else one carrying the
    history fields."""
    state = _state()
    if state.store is None:
        return jsonify(sample_transaction(state.validate.fields))
    body = sample_transaction(state.validate.fields, now())
    body["transaction_id"] = f"sample-{uuid.uuid4().hex[:12]}"
    return jsonify(body)
