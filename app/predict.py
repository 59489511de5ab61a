"""The scoring endpoints, POST /predict and POST /predict/batch: the one path a scoring request
takes, from its bytes to its JSON answer.

They are answered here, in front of Flask, because Flask's per-request machinery (contexts,
routing, hooks, response objects) costs more than scoring one transaction on a cold worker
(``make bench-serve``: /predict ~1,400 req/s through a Flask view, ~2,500 here). Each step is
done once, for both endpoints: the content type (415), the body's size, from Content-Length
or a chunked stream (413 past ``MAX_PREDICT_LENGTH`` for one transaction, past
``MAX_CONTENT_LENGTH`` for a batch), JSON parsing (400, lone surrogates too), validation (422),
the batch size (413 past ``MAX_BATCH``), scoring, the metrics and audit log, and the JSON
answer or error (``app.errors``, the body every other route's errors have too). Every other
route is Flask's; on these paths OPTIONS lists the methods and any other method gets a 405,
as Flask would answer them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import orjson
from flask import Flask

from app.errors import INTERNAL_ERROR, ApiError, error_payload
from app.history import DUPLICATE_WARNING, NO_HISTORY_WARNING, NONE, STORE
from app.keys import key_name
from app.monitoring import log_predictions
from app.validation import Columns

logger = logging.getLogger(__name__)
JSON_MIMETYPE = "application/json"
#: "200 OK" and the like, built once (an HTTPStatus lookup per request costs a microsecond).
STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
#: The methods the scoring endpoints answer.
ALLOW = "OPTIONS, POST"


def now() -> str:
    """The current UTC time, ISO 8601: the ``timestamp`` of every answer."""
    return datetime.now(UTC).isoformat()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_content_type(content_type: str) -> None:
    """ApiError 415 unless the media type is JSON (parameters such as charset are fine)."""
    if content_type.partition(";")[0].strip().lower() != JSON_MIMETYPE:
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be {JSON_MIMETYPE}")


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (ApiError 413 beyond, 400 when cut short).

    A body comes with a Content-Length, or chunked (gunicorn then marks the stream
    ``wsgi.input_terminated`` and it ends where the body does).
    """
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        if not (length.isascii() and length.isdigit()):
            raise ApiError(400, "bad_request", f"Content-Length {length[:20]!r} is not a number")
        size = int(length)
        if size > limit:
            raise _too_large(limit)
        data = stream.read(size)
        if len(data) < size:
            raise ApiError(400, "bad_request", "request body is shorter than its Content-Length")
        return data
    if environ.get("wsgi.input_terminated"):
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise _too_large(limit)
        return data
    return b""


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body is over {limit} bytes")


def parse_json(raw: bytes) -> Any:
    """The parsed body; ApiError 400 when it is empty or not JSON."""
    if not raw.strip():
        raise ApiError(400, "bad_request", "request body is empty")
    try:
        return orjson.loads(raw)  # fast and strict: NaN/Infinity are not JSON
    except orjson.JSONDecodeError:
        pass
    # The standard library words the error, and takes valid JSON orjson refuses (integers
    # beyond 64 bits, deep nesting) so validation can name the field.
    try:
        parsed = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"malformed JSON: {str(exc)[:200]}") from None
    _refuse_lone_surrogates(parsed)
    return parsed


def _refuse_lone_surrogates(value: Any) -> None:
    """ApiError 400 for an object key holding a lone surrogate escape such as ``"\\ud800"``:
    valid JSON text but no Unicode character, so a key could not be echoed back as UTF-8 (as
    the unknown-field warning does). Such a value is the validator's: a 422 naming its field."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in item:
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError as exc:
                    bad = key[exc.start : exc.end].encode("unicode_escape").decode()
                    raise ApiError(
                        400, "bad_request", f"malformed JSON: lone surrogate {bad} in a key"
                    ) from None
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _prediction_ids(n: int) -> str:
    """``n`` prediction ids, 32 hex digits each: 128 random bits apiece, as uuid4, from one
    ``os.urandom`` call (unique across workers and restarts without coordination)."""
    return os.urandom(16 * n).hex()


def _entry(
    out: dict[str, Any],
    result: dict[str, Any],
    record: dict[str, Any],
    warnings: list[str],
    answered_at: str,
    version: str,
    source: str,
    history: dict[str, Any] | None,
    debug: bool,
) -> dict[str, Any]:
    """One scored transaction's answer, its fields added to ``out`` in their fixed order: the
    prediction, its history source (and, with FEATURE_STORE_DEBUG, the history the store
    computed). Keys set one by one: no intermediate dict (a batch makes 1,000)."""
    if source == NONE:
        warnings = [*warnings, NO_HISTORY_WARNING]
    more = result["warnings"]
    out["fraud_probability"] = result["fraud_probability"]
    out["is_fraud"] = result["is_fraud"]  # a bool (Scorer.score_records)
    out["risk_level"] = result["risk_level"]
    out["prediction_id"] = result["prediction_id"]
    out["timestamp"] = answered_at
    out["model_version"] = version
    out["reasons"] = result["reasons"]
    out["warnings"] = warnings + more if more else warnings
    out["history_source"] = source
    if "transaction_id" in record:
        out["transaction_id"] = record["transaction_id"]
    if debug and source == STORE:
        out["history"] = history
    return out


def _record_scored(
    app: Flask,
    records: list[dict[str, Any]],
    results: list[dict[str, Any]],
    history: list[dict[str, Any] | None],
    sources: list[str],
) -> None:
    """Score metrics, and the audit log when it is configured (``app.audit``: the validated
    request fields, with the history the store computed as if the client had sent it)."""
    app.extensions["fraud"].metrics.observe_scores(
        [r["fraud_probability"] for r in results], sum(bool(r["is_fraud"]) for r in results)
    )
    if app.extensions["monitoring"].log is not None:
        log_predictions(
            app,
            [
                {  # in the log's order (AUDIT_FIELDS first): its quickest path
                    "prediction_id": result["prediction_id"],
                    "fraud_probability": result["fraud_probability"],
                    "decision": "fraud" if result["is_fraud"] else "legit",
                    "history_source": source,
                    **record,
                    **(h or {}),
                }
                for record, result, h, source in zip(
                    records, results, history, sources, strict=True
                )
            ],
        )


def _history_rows(columns: dict[str, Any] | None, n: int) -> list[dict[str, Any]]:
    """The store's history columns as one dict per row (JSON-ready numbers)."""
    if not columns:
        return [{} for _ in range(n)]
    lists = {name: _plain(values) for name, values in columns.items()}
    return [{name: values[k] for name, values in lists.items()} for k in range(n)]


def _plain(values: Any) -> list[Any]:
    """A history column as a list of Python numbers (NaN stays NaN: JSON null)."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _score(
    app: Flask, records: list[dict[str, Any]], columns: Columns | None = None
) -> tuple[dict[int, dict[str, Any]], dict[int, list[dict[str, str]]], list[str], dict]:
    """Score validated records with their history (``app.history``): (results by position,
    refused by position, each record's history source, the store's history by position).
    ``columns``: the records' clean columns (``TransactionValidator.batch_columns``)."""
    state = app.extensions["fraud"]
    sourced = state.history.resolve(records)
    store_rows = sourced.rows
    other = [k for k, s in enumerate(sourced.sources) if s != STORE]
    results: dict[int, dict[str, Any]] = {}
    if len(other) == len(records):  # none from the store: the columns are these records'
        scored = state.scorer.score_records(records, columns=columns)
        results.update(enumerate(scored))
    elif other:
        scored = state.scorer.score_records([records[k] for k in other])
        results.update(zip(other, scored, strict=True))
    history: dict[int, dict[str, Any]] = {}
    if store_rows:
        scored = state.scorer.score_records([records[k] for k in store_rows], sourced.columns)
        results.update(zip(store_rows, scored, strict=True))
        if app.config["FEATURE_STORE_DEBUG"] or app.extensions["monitoring"].log is not None:
            rows = _history_rows(sourced.columns, len(store_rows))
            history = dict(zip(store_rows, rows, strict=True))
    order = sorted(results)
    ids = _prediction_ids(len(order))
    for k, start in zip(order, range(0, 32 * len(order), 32), strict=True):
        results[k]["prediction_id"] = ids[start : start + 32]
    _record_scored(
        app,
        [records[k] for k in order],
        [results[k] for k in order],
        [history.get(k) for k in order],
        [sourced.sources[k] for k in order],
    )
    for k in sourced.duplicates:
        results[k]["warnings"] = [*results[k]["warnings"], DUPLICATE_WARNING]
    return results, sourced.errors, sourced.sources, history


def score_one(app: Flask, body: Any, started: float) -> dict[str, Any]:
    """The /predict answer for a parsed body; ApiError 422 when it is invalid."""
    state = app.extensions["fraud"]
    record, warnings, errors = state.validate(body)
    if errors:
        raise ApiError(422, "validation_error", "invalid transaction", errors)
    results, refused, sources, history = _score(app, [record])
    if refused:
        raise ApiError(422, "validation_error", "invalid transaction", refused[0])
    version, debug = state.scorer.version, app.config["FEATURE_STORE_DEBUG"]
    out = _entry(
        {}, results[0], record, warnings, now(), version, sources[0], history.get(0), debug
    )
    out["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return out


def score_batch(app: Flask, body: Any, started: float) -> dict[str, Any]:
    """The /predict/batch answer: invalid items reported by index, the rest scored."""
    state = app.extensions["fraud"]
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
    max_batch = app.config["MAX_BATCH"]
    if len(items) > max_batch:
        raise ApiError(
            413, "payload_too_large", f"batch has {len(items)} items; at most {max_batch}"
        )
    results: list[dict[str, Any] | None] = [None] * len(items)
    valid: list[tuple[int, dict[str, Any], list[str]]] = []
    validated, columns = state.validate.batch_columns(items)
    for i, (record, warnings, errors) in enumerate(validated):
        if errors:
            results[i] = {"index": i, "errors": errors}
        else:
            valid.append((i, record, warnings))
    scored, refused, sources, history = _score(app, [record for _, record, _ in valid], columns)
    answered, version = now(), state.scorer.version
    debug = app.config["FEATURE_STORE_DEBUG"]
    n = 0
    for k, (i, record, warnings) in enumerate(valid):
        if k in refused:
            results[i] = {"index": i, "errors": refused[k]}
            continue
        n += 1
        results[i] = _entry(
            {"index": i},
            scored[k],
            record,
            warnings,
            answered,
            version,
            sources[k],
            history.get(k),
            debug,
        )
    return {
        "results": results,
        "n_scored": n,
        "n_errors": len(items) - n,
        "processing_time_ms": round((time.perf_counter() - started) * 1000, 3),
        "model_version": state.scorer.version,
    }


#: Path -> the function that answers a parsed body.
ENDPOINTS: dict[str, Callable[[Flask, Any, float], dict[str, Any]]] = {
    "/predict": score_one,
    "/predict/batch": score_batch,
}


class ScoringEndpoints:
    """WSGI middleware answering ``ENDPOINTS`` itself and passing everything else to Flask."""

    def __init__(
        self, app: Flask, wsgi_app: Callable[..., Any], api_keys: dict[bytes, str] | None = None
    ) -> None:
        self.app = app
        self.flask = wsgi_app
        self.metrics = app.extensions["fraud"].metrics
        self.api_keys = api_keys or {}  # digest -> name (app.keys); empty: open
        batch = int(app.config["MAX_CONTENT_LENGTH"])
        #: path -> body limit: one transaction is ~1 KB, so /predict needs no 8 MiB body
        self.limits = {
            "/predict": min(int(app.config["MAX_PREDICT_LENGTH"]), batch),
            "/predict/batch": batch,
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        endpoint = ENDPOINTS.get(path)
        if endpoint is None:
            return self.flask(environ, start_response)
        started = time.perf_counter()
        headers = [("Content-Type", JSON_MIMETYPE)]
        method = environ.get("REQUEST_METHOD")
        if method == "OPTIONS":  # as Flask answers it: the allowed methods, no body
            start_response(STATUS_LINES[200], [("Allow", ALLOW), ("Content-Length", "0")])
            self.metrics.observe_request(path, 200, time.perf_counter() - started)
            return [b""]
        try:
            if method != "POST":
                headers.append(("Allow", ALLOW))
                raise ApiError(405, "method_not_allowed", f"{path} accepts POST only")
            if self.api_keys:  # before the body is read: no work for an unknown caller
                name = key_name(environ.get("HTTP_AUTHORIZATION", ""), self.api_keys)
                if name is None:
                    headers.append(("WWW-Authenticate", 'Bearer realm="fraud-scoring"'))
                    raise ApiError(401, "unauthorized", "a valid API key is required (Bearer)")
                self.metrics.observe_key(name)
            check_content_type(environ.get("CONTENT_TYPE", ""))
            body = parse_json(read_body(environ, self.limits[path]))
            status, out = 200, endpoint(self.app, body, started)
        except ApiError as exc:
            status, out = exc.status, error_payload(exc.error, exc.message, exc.details)
        except Exception:  # a bug: logged, answered as JSON like Flask's handler does
            logger.exception("unhandled error on %s %s", environ.get("REQUEST_METHOD"), path)
            status, out = 500, INTERNAL_ERROR
        payload = orjson.dumps(out)
        headers.append(("Content-Length", str(len(payload))))
        start_response(STATUS_LINES[status], headers)
        self.metrics.observe_request(path, status, time.perf_counter() - started)
        return [payload]
