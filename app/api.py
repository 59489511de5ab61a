"""The service's one blueprint: scoring, health, model facts, metrics and the API document."""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from app.monitoring import log_predictions
from app.schemas import openapi_document, sample_transaction

bp = Blueprint("fraud", __name__)
logger = logging.getLogger(__name__)
JSON_MIMETYPE = "application/json"


class ApiError(Exception):
    """A client error answered as JSON with a status code and optional field details."""

    def __init__(
        self, status: int, error: str, message: str, details: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details


def _state() -> Any:
    return current_app.extensions["fraud"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_body() -> Any:
    """The parsed JSON body, or ApiError 415 / 400 (413 comes from MAX_CONTENT_LENGTH)."""
    if request.mimetype != JSON_MIMETYPE:
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be {JSON_MIMETYPE}")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "bad_request", "request body is empty")
    try:
        return orjson.loads(raw)  # fast and strict: NaN/Infinity are not JSON
    except orjson.JSONDecodeError:
        pass
    # The standard library words the error, and takes valid JSON orjson refuses (integers
    # beyond 64 bits, lone surrogate escapes, deep nesting) so validation can name the field.
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"malformed JSON: {str(exc)[:200]}") from None


def _prediction_ids(n: int) -> str:
    """``n`` prediction ids, 32 hex digits each: 128 random bits apiece, as uuid4, from one
    ``os.urandom`` call (unique across workers and restarts without coordination)."""
    return os.urandom(16 * n).hex()


def _prediction(
    result: dict[str, Any],
    record: dict[str, Any],
    warnings: list[str],
    now: str,
    version: str,
    prediction_id: str,
    out: dict[str, Any] | None = None,
) -> dict:
    """The response entry of one scored transaction (added to ``out`` when given)."""
    out = {} if out is None else out
    out |= {
        "fraud_probability": result["fraud_probability"],
        "is_fraud": bool(result["is_fraud"]),
        "risk_level": result["risk_level"],
        "prediction_id": prediction_id,
        "timestamp": now,
        "model_version": version,
        "reasons": result["reasons"],
        "warnings": warnings + result["warnings"] if result["warnings"] else warnings,
    }
    if "transaction_id" in record:
        out["transaction_id"] = record["transaction_id"]
    return out


def _record_scored(
    app: Flask, records: list[dict[str, Any]], results: list[dict[str, Any]]
) -> None:
    """Score metrics, and the drift-monitoring log when it is configured."""
    app.extensions["fraud"].metrics.observe_scores(
        [r["fraud_probability"] for r in results], sum(bool(r["is_fraud"]) for r in results)
    )
    if app.extensions["monitoring"].log is not None:
        log_predictions(
            app,
            [
                {**record, "fraud_probability": result["fraud_probability"]}
                for record, result in zip(records, results, strict=True)
            ],
        )


def score_one(app: Flask, body: Any, started: float) -> dict[str, Any]:
    """The /predict response for a parsed body; ApiError 422 when it is invalid."""
    state = app.extensions["fraud"]
    record, warnings, errors = state.validate(body)
    if errors:
        raise ApiError(422, "validation_error", "invalid transaction", errors)
    result = state.scorer.score_record(record)
    _record_scored(app, [record], [result])
    out = _prediction(result, record, warnings, _now(), state.scorer.version, _prediction_ids(1))
    out["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return out


@bp.before_app_request
def _start_timer() -> None:
    g.started = time.perf_counter()


@bp.after_app_request
def _record_request(response: Response) -> Response:
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    started = g.get("started", time.perf_counter())
    _state().metrics.observe_request(rule, response.status_code, time.perf_counter() - started)
    return response


@bp.post("/predict")
def predict() -> Response:
    """Score one transaction (valid requests are usually answered by ``FastPredict``)."""
    started = time.perf_counter()
    return jsonify(score_one(current_app._get_current_object(), _json_body(), started))


@bp.post("/predict/batch")
def predict_batch() -> Response:
    """Score a list of transactions; invalid items are reported by index, the rest scored."""
    started = time.perf_counter()
    state = _state()
    body = _json_body()
    if not isinstance(body, dict):
        raise ApiError(
            422,
            "validation_error",
            "invalid batch",
            [{"field": "$", "message": "request body must be a JSON object"}],
        )
    items = body.get("transactions")
    if not isinstance(items, list) or not items:
        raise ApiError(
            422,
            "validation_error",
            "invalid batch",
            [{"field": "transactions", "message": "must be a non-empty array"}],
        )
    max_batch = int(current_app.config["MAX_BATCH"])
    if len(items) > max_batch:
        raise ApiError(
            413, "payload_too_large", f"batch has {len(items)} items; at most {max_batch}"
        )
    results: list[dict[str, Any] | None] = [None] * len(items)
    valid: list[tuple[int, dict[str, Any], list[str]]] = []
    for i, (record, warnings, errors) in enumerate(state.validate.batch(items)):
        if errors:
            results[i] = {"index": i, "errors": errors}
        else:
            valid.append((i, record, warnings))
    records = [record for _, record, _ in valid]
    scored = state.scorer.score_records(records)
    _record_scored(current_app._get_current_object(), records, scored)
    now, version, ids = _now(), state.scorer.version, _prediction_ids(len(valid))
    for k, ((i, record, warnings), result) in enumerate(zip(valid, scored, strict=True)):
        prediction_id = ids[32 * k : 32 * k + 32]
        results[i] = _prediction(
            result, record, warnings, now, version, prediction_id, {"index": i}
        )
    return jsonify(
        {
            "results": results,
            "n_scored": len(valid),
            "n_errors": len(items) - len(valid),
            "processing_time_ms": round((time.perf_counter() - started) * 1000, 3),
            "model_version": state.scorer.version,
        }
    )


@bp.get("/health")
def health() -> Response:
    """Liveness and basic facts."""
    state = _state()
    return jsonify(
        {
            "status": "ok",
            "timestamp": _now(),
            "model_loaded": state.scorer is not None,
            "version": state.scorer.version,
            "uptime_seconds": round(time.time() - state.started, 3),
        }
    )


@bp.get("/ready")
def ready() -> Response:
    """200 with the model version: a worker exists only once its model loaded and verified
    (``create_app`` raises otherwise, so the worker never boots)."""
    return jsonify({"ready": True, "version": _state().scorer.version})


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
    """A valid example body for POST /predict."""
    return jsonify(sample_transaction(_state().validate.fields))


class FastPredict:
    """WSGI layer answering a valid ``POST /predict`` without Flask's request machinery.

    Flask's per-request work (contexts, routing, hooks, response objects) costs more than
    scoring itself on a cold worker. A request with a JSON content type, a Content-Length within
    ``MAX_CONTENT_LENGTH``, a body that parses and a valid transaction is scored here by the
    same ``score_one`` the view uses, and counted in the same metrics. Anything else - every
    error, every other route - goes to Flask with the body put back, so each error keeps its
    one implementation.
    """

    def __init__(self, app: Flask, wsgi_app: Callable[..., Any]) -> None:
        self.app = app
        self.flask = wsgi_app
        self.metrics = app.extensions["fraud"].metrics
        self.limit = app.config.get("MAX_CONTENT_LENGTH")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == "/predict" and environ.get("REQUEST_METHOD") == "POST":
            started = time.perf_counter()
            body = self._score(environ, started)
            if body is not None:
                start_response(
                    "200 OK",
                    [("Content-Type", JSON_MIMETYPE), ("Content-Length", str(len(body)))],
                )
                self.metrics.observe_request("/predict", 200, time.perf_counter() - started)
                return [body]
        return self.flask(environ, start_response)

    def _score(self, environ: dict[str, Any], started: float) -> bytes | None:
        """The response body, or None to let Flask answer (body restored for it)."""
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        length = environ.get("CONTENT_LENGTH", "")
        if mimetype != JSON_MIMETYPE or not length.isdigit():
            return None
        size = int(length)
        if self.limit is not None and size > self.limit:
            return None
        raw = environ["wsgi.input"].read(size)
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            out = score_one(self.app, orjson.loads(raw), started)  # needs no app context
        except (orjson.JSONDecodeError, ApiError):
            return None  # Flask words the 400 / 422
        except Exception:  # a bug: Flask answers it too, as a logged JSON 500
            logger.exception("fast /predict path failed; handing the request to Flask")
            return None
        return orjson.dumps(out)


def _error_response(
    status: int, error: str, message: str, details: list[Any] | None = None
) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": error, "message": message}
    if details is not None:
        body["details"] = details
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    """JSON errors everywhere: client errors keep their status, bugs become a logged 500."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        return _error_response(exc.status, exc.error, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        response, _ = _error_response(status, name, exc.description or exc.name or "error")
        if status == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception) -> tuple[Response, int]:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return _error_response(500, "internal_error", "internal server error")
