# Thin aliases of the real commands; every target is runnable by hand. `make` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# The environment recorded in the committed params.yaml, unless ENV=... is given.
ENV ?= $(shell sed -n 's/^  env: *//p' params.yaml 2>/dev/null | head -n1)
ARGS ?=

.PHONY: help venv params repro retrain report serve materialize drift performance export-production score system-deps test test-fast lint format bench-pipeline bench-models bench-serve bench-peer bench-score bench-audit bench-store bench-scale reliability baseline clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed ## Create .venv from the pinned requirements

params: venv ## Compose conf/ into params.yaml: make params ENV=staging ARGS="model.max_depth=8"
	$(BIN)/python -m stages.compose env=$(ENV) $(ARGS)

repro: venv ## Reproduce every artifact from params.yaml (dvc repro)
	$(BIN)/dvc repro

retrain: params ## Compose for ENV, run the pipeline and the quality gate: make retrain ENV=production
	$(BIN)/dvc repro
	@$(BIN)/python -m stages.report

REPORT_ARGS ?=
report: venv ## Self-contained HTML of the last run (gate, metrics, curves, calibration, latest drift) -> reports/index.html
	$(BIN)/python -m stages.html_report $(REPORT_ARGS)

serve: venv ## Serve models/ with gunicorn on PORT (default 8000); honours MODEL_DIR, FEATURES_PATH
	$(BIN)/gunicorn -c app/gunicorn.conf.py "app:create_app()"

system-deps: ## Install the Debian packages the tests run for real (redis-server, chromium), if missing
	scripts/system_packages.sh

materialize: venv ## Fill the online feature store (FEATURE_STORE_URL) from data/processed/ for models/
	$(BIN)/python -m stages.materialize $(ARGS)

test: venv system-deps ## Run the whole test suite (not the image tests: make test-image)
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: venv system-deps ## Run the tests without the slow ones
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

lint: venv ## Lint and check formatting (ruff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv ## Format and auto-fix (ruff)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-pipeline: venv ## Benchmark the production pipeline per stage (JSON in benchmarks/results/)
	$(BIN)/python -m benchmarks.pipeline

bench-models: venv ## bench-pipeline, then test metrics of every model and the no-history ablation
	$(BIN)/python -m benchmarks.pipeline --models

DRIFT_ARGS ?= --scenario none
performance: venv ## Realized performance from the audit log joined with feedback labels (non-zero below conf bounds): make performance PERFORMANCE_ARGS="--log DIR | --url URL"
	$(BIN)/python -m stages.performance $(PERFORMANCE_ARGS)

EXPORT_ARGS ?=
export-production: venv ## Training set from the audit log joined with feedback labels -> data/external/production.parquet: make export-production EXPORT_ARGS="--log DIR"
	$(BIN)/python -m stages.export $(EXPORT_ARGS)

bench-store: venv ## Benchmark the online store in-process: batches of 1,000 (predict, feedback) and single transactions by phase, store size (JSON in benchmarks/results/)
	$(BIN)/python -m benchmarks.store

bench-audit: venv ## Benchmark /predict with the audit log off and on, and POST /feedback (JSON in benchmarks/results/)
	$(BIN)/python -m benchmarks.audit

RELIABILITY_ARGS ?=
reliability: venv ## The reliability promises against a live gunicorn; non-zero if one fails: make reliability RELIABILITY_ARGS="--short"
	$(BIN)/python -m benchmarks.reliability $(RELIABILITY_ARGS)

drift: venv ## Compare current data with the training reference (non-zero on drift): make drift DRIFT_ARGS="--scenario moderate | --current FILE | --url URL"
	$(BIN)/python -m stages.drift $(DRIFT_ARGS)

INPUT ?=
OUTPUT ?=
score: venv ## Score a file offline with models/: make score INPUT=tx.csv OUTPUT=scored.csv (.csv / .parquet)
	@test -n "$(INPUT)" && test -n "$(OUTPUT)" || { echo 'usage: make score INPUT=<transactions .csv|.parquet> OUTPUT=<scored .csv|.parquet> [ARGS="--model-dir DIR"]' >&2; exit 2; }
	$(BIN)/python -m stages.score --input "$(INPUT)" --output "$(OUTPUT)" $(ARGS)

bench-serve: venv ## Benchmark the scoring service under load on loopback (JSON in benchmarks/results/)
	$(BIN)/python -m benchmarks.serve

MLSERVER_VENV := .venv-mlserver
bench-peer: venv ## Ours beside MLServer 1.7 (mlserver-xgboost, own venv) on the same booster (JSON in benchmarks/results/)
	test -x $(MLSERVER_VENV)/bin/mlserver || { $(PYTHON) -m venv $(MLSERVER_VENV) && $(MLSERVER_VENV)/bin/pip install --quiet mlserver==1.7.1 mlserver-xgboost==1.7.1 uvloop==0.21.0; }
	$(BIN)/python -m benchmarks.peer --mlserver $(MLSERVER_VENV)/bin/mlserver

bench-score: venv ## Benchmark make score on 1M transactions, CSV and Parquet (JSON in benchmarks/results/)
	$(BIN)/python -m benchmarks.score

bench-scale: venv ## Benchmark compute=dask at 1M, 3M, 10M transactions on a real local cluster (JSON in benchmarks/results/)
	$(BIN)/python -m benchmarks.scale

baseline: venv ## Record the served production model's test metrics as the gate's baseline
	$(BIN)/python -m stages.baseline
	$(BIN)/dvc repro

clean: ## Remove generated data and caches (keeps committed artifacts)
	rm -rf data/raw data/processed data/features data/candidate .pytest_cache .ruff_cache

# Delivery: the commands the GitHub workflows run (.github/workflows/), runnable by hand.
.PHONY: security check-pipeline lint-deploy rollback

security: venv ## Security: ruff's bandit (S) rules, pip-audit --strict of the pinned requirements (fails unless PyPI's advisory API audits every package)
	$(BIN)/ruff check --select S --ignore S101,S603,S607 .
	$(BIN)/pip-audit --strict --progress-spinner off -r requirements.txt -r requirements-serve.txt

check-pipeline: venv ## params.yaml is a fresh composition of its env, and dvc.lock matches (dvc repro --allow-missing --dry)
	scripts/check_pipeline.sh

lint-deploy: venv ## Lint delivery files: workflows and dependabot (GitHub schemas), Dockerfile (hadolint), shell scripts (shellcheck)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/hadolint Dockerfile
	$(BIN)/shellcheck scripts/*.sh .ci/run

TO ?=
rollback: venv ## Restore, verify and commit the model of a git revision: make rollback TO=HEAD~1
	@test -n "$(TO)" || { echo "usage: make rollback TO=<git-rev>" >&2; exit 2; }
	scripts/rollback_model.sh "$(TO)"

# The container image, built and run for real (buildah; no Docker engine needed). Root: the
# scripts use sudo when run as another user.
.PHONY: image-deps image image-test test-image

IMAGE ?= fraud-api:latest
image-deps: ## Install the Debian packages the image targets use (buildah, debootstrap), if missing
	scripts/system_packages.sh --image

image: image-deps ## Build the Dockerfile into IMAGE (fraud-api:latest); stand-in base images where none can be pulled
	scripts/build_image.sh -t $(IMAGE)

image-test: image ## Run IMAGE's CMD as its USER in its root filesystem; check serving, the C kernel, what it leaves out
	$(PYTHON) scripts/image_test.py $(IMAGE)

test-image: venv image ## The tests that build broken variants of the Dockerfile and prove image-test fails on each
	$(BIN)/python -m pytest --image tests/delivery/test_image.py
