"""POST /feedback: labels that arrive after the fact (chargebacks, investigations).

One label, ``{"transaction_id", "is_fraud", "labelled_at"}`` (``labelled_at``: ISO 8601, naive
is UTC, default the time received), or a batch, ``{"labels": [...]}`` of at most
``MAX_BATCH``. Needs ``Authorization: Bearer <FEEDBACK_TOKEN>`` (404 while the setting is
unset, 401 without it). Per label, a status:

- ``recorded``: it is now the transaction's label (appended to the label log,
  ``fraud.monitoring.auditlog``);
- ``unchanged``: the same label with the same ``labelled_at`` was already recorded (idempotent);
- ``superseded``: the transaction already has a label with a later ``labelled_at``: the last
  label wins, by ``labelled_at`` (on a tie, the one received last);
- ``unknown``: no prediction of the audit log has this ``transaction_id`` (a single label:
  404); an invalid item is reported at its index with field errors (a single label: 422).

A transaction whose history the online store computed gets its label on its stored events
(``fraud.store.labels``), so label-delayed risk features see it once it is older than the
label delay, as offline. The audit log is read incrementally (``LogTail``) by each worker into
an index of transaction ids; a prediction is known once its worker has flushed it (at most
``PREDICTION_LOG_FLUSH_SECONDS``).
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from app.audit import PredictionLog
from app.errors import ApiError, error_payload
from app.history import STORE
from app.predict import check_content_type, parse_json, read_body
from app.validation import parse_timestamp
from fraud.monitoring.auditlog import LABEL_FIELDS, LABELS_DIR, LogTail, is_newer
from fraud.store import StoreUnavailableError
from fraud.store.labels import Labels
from fraud.store.layout import event_id, time_ms

bp = Blueprint("feedback", __name__)
logger = logging.getLogger(__name__)
STATUSES = ("recorded", "unchanged", "superseded", "unknown")
#: How far ahead of the server's clock a labelled_at may be (clock skew).
MAX_SKEW_S = 300
MAX_ID = 128
_KEYS = frozenset(("transaction_id", "is_fraud", "labelled_at"))
#: A UTC date-time as most systems write it: naive, Z or +00:00, up to microseconds.
_PLAIN_UTC = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?(?:Z|\+00:00)?"
)


class Feedback:
    """Per worker: the index of predicted transactions and their current labels, the label
    log, and the store to relabel; in ``app.extensions["feedback"]``."""

    def __init__(self, app: Flask, directory: Path, store: Any, index_limit: int) -> None:
        settings = app.config
        self.token: str = settings["FEEDBACK_TOKEN"]
        self.max_batch = int(settings["MAX_BATCH"])
        self.log = PredictionLog(
            directory / LABELS_DIR,
            LABEL_FIELDS,
            settings["PREDICTION_LOG_MAX_BYTES"],
            settings["PREDICTION_LOG_MAX_FILES"],
            0.0,  # a label is on disk before it is acknowledged
            required=LABEL_FIELDS,
        )
        self.store = store
        self.entities = store.features.entity_columns if store is not None else []
        self.predictions = LogTail(directory)
        self.labels = LogTail(directory / LABELS_DIR)
        self.limit = index_limit
        #: transaction_id -> its store coordinates (time ms, entity ids), or None when the
        #: store did not compute its history
        self.known: dict[str, tuple[int, tuple[str, ...]] | None] = {}
        #: transaction_id -> (labelled_at, is_fraud) of its current label
        self.current: dict[str, tuple[str, int]] = {}
        self.lock = threading.Lock()

    def refresh(self) -> None:
        """Read what every worker logged since the last call into the index."""
        audit = current_app.extensions["monitoring"].log
        if audit is not None:
            audit.flush()
        known, entities = self.known, self.entities
        for r in self.predictions.read_new():
            txn = r.get("transaction_id")
            if not isinstance(txn, str):
                continue
            known.pop(txn, None)  # the latest prediction of a transaction, last in order
            coordinates = None
            if r.get("history_source") == STORE and all(c in r for c in entities):
                try:
                    coordinates = (time_ms(r["timestamp"]), tuple(str(r[c]) for c in entities))
                except (KeyError, TypeError, ValueError):
                    coordinates = None
            known[txn] = coordinates
        for r in self.labels.read_new(skip=self.log.written):  # its own are applied
            self._apply(r["transaction_id"], r["labelled_at"], int(r["is_fraud"]))
        _bound(known, self.limit)
        _bound(self.current, self.limit)

    def _apply(self, txn: str, labelled_at: str, is_fraud: int) -> str:
        """The label's status against the current one (which it replaces when recorded)."""
        current = self.current.get(txn)
        if current == (labelled_at, is_fraud):
            return "unchanged"
        if current is not None and not is_newer(labelled_at, current[0]):
            return "superseded"
        self.current.pop(txn, None)
        self.current[txn] = (labelled_at, is_fraud)
        return "recorded"

    def submit(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Record validated labels; one result per item. Raises ApiError 503 when the store
        cannot take them (they are in the label log; sending them again applies them)."""
        with self.lock:
            self.refresh()
            results, lines, relabel = [], [], []
            for item in items:
                txn = item["transaction_id"]
                out = {"transaction_id": txn}
                if txn not in self.known:
                    out["status"] = "unknown"
                    results.append(out)
                    continue
                status = self._apply(txn, item["labelled_at"], item["is_fraud"])
                if status == "recorded":
                    lines.append(item)
                labelled_at, is_fraud = self.current[txn]
                out |= {"status": status, "is_fraud": bool(is_fraud), "labelled_at": labelled_at}
                results.append(out)
                if status != "superseded" and self.known[txn] is not None:
                    relabel.append((self.known[txn], txn, is_fraud))
            self.log.write(lines)
        metrics = getattr(current_app.extensions.get("fraud"), "metrics", None)
        if metrics is not None:
            metrics.observe_feedback(r["status"] for r in results)
        if relabel and self.store is not None:
            self._relabel(relabel)
        return results

    def _relabel(self, items: list[tuple[tuple[int, tuple[str, ...]], str, int]]) -> None:
        n = len(items)
        labels = Labels(
            t=np.fromiter((c[0] for c, _, _ in items), np.int64, n),
            id=np.fromiter((event_id(txn) for _, txn, _ in items), np.int64, n),
            label=np.fromiter((y for _, _, y in items), np.int8, n),
            entities={
                column: [c[1][j] for c, _, _ in items] for j, column in enumerate(self.entities)
            },
        )
        try:
            self.store.label(labels)
        except StoreUnavailableError as exc:
            logger.error("feedback: feature store unavailable: %s", exc)
            raise ApiError(
                503,
                "feature_store_unavailable",
                f"the labels are recorded but the online feature store cannot be used ({exc}); "
                "send them again to apply them to the store",
            ) from None


def _bound(index: dict, limit: int) -> None:
    """Forget the oldest entries of ``index`` beyond ``limit`` (insertion order)."""
    excess = len(index) - limit
    if excess > 0:
        for key in list(index)[:excess]:
            del index[key]


def validate_label(item: Any, now: datetime) -> tuple[dict[str, Any] | None, list[dict]]:
    """(label, field errors) of one item: ``transaction_id``, ``is_fraud`` (true/false/0/1),
    ``labelled_at`` (ISO 8601; naive is UTC; default ``now``), normalised to UTC."""
    if not isinstance(item, Mapping):
        return None, [_error("$", "a label must be a JSON object")]
    errors = []
    txn = item.get("transaction_id")
    if not isinstance(txn, str) or not txn.strip() or len(txn) > MAX_ID:
        errors.append(_error("transaction_id", f"must be a non-empty string of <= {MAX_ID}"))
    is_fraud = item.get("is_fraud")
    if isinstance(is_fraud, bool) or (type(is_fraud) is int and is_fraud in (0, 1)):
        is_fraud = int(is_fraud)
    else:
        errors.append(_error("is_fraud", "must be true, false, 0 or 1"))
    raw = item.get("labelled_at")
    when = now
    if raw is not None:
        parsed = parse_timestamp(raw) if isinstance(raw, str) else None
        if parsed is None:
            errors.append(_error("labelled_at", "must be an ISO 8601 date-time"))
        elif (parsed - now).total_seconds() > MAX_SKEW_S:
            errors.append(_error("labelled_at", "is in the future"))
        else:
            when = parsed
    unknown = sorted(set(item) - {"transaction_id", "is_fraud", "labelled_at"})
    errors += [_error(str(name)[:64], "unknown field") for name in unknown[:5]]
    if errors:
        return None, errors
    labelled_at = when.astimezone(UTC).isoformat(timespec="microseconds")
    return {"transaction_id": txn, "is_fraud": is_fraud, "labelled_at": labelled_at}, []


def validate_labels(items: list[Any], now: datetime) -> list[tuple[dict | None, list[dict]]]:
    """``validate_label`` of each item, the usual shape checked inline (a batch's labels are
    mostly valid, and often share their ``labelled_at``: each distinct one is parsed once);
    an item that fails the quick checks is judged by ``validate_label``, which names the
    fields."""
    default = now.astimezone(UTC).isoformat(timespec="microseconds")
    latest = (
        (now + timedelta(seconds=MAX_SKEW_S)).astimezone(UTC).isoformat(timespec="microseconds")
    )
    parsed: dict[str, str | None] = {}
    out: list[tuple[dict | None, list[dict]]] = []
    for item in items:
        if type(item) is dict and item.keys() <= _KEYS:
            txn, y, raw = item.get("transaction_id"), item.get("is_fraud"), item.get("labelled_at")
            at = default if raw is None else None
            if type(raw) is str:
                at = parsed[raw] if raw in parsed else parsed.setdefault(raw, _utc_text(raw))
            if (
                at is not None
                and at <= latest  # same format: text order is time order
                and type(txn) is str
                and 0 < len(txn) <= MAX_ID
                and not txn.isspace()
                and (y is True or y is False or (type(y) is int and (y == 0 or y == 1)))
            ):
                out.append(({"transaction_id": txn, "is_fraud": int(y), "labelled_at": at}, []))
                continue
        out.append(validate_label(item, now))
    return out


def _utc_text(raw: str) -> str | None:
    """``raw`` (ISO 8601; naive is UTC) as UTC text with microseconds; None when invalid.
    A UTC time written plainly is rewritten as text once ``fromisoformat`` accepts it (5x
    faster than formatting the datetime); any other form goes through the datetime."""
    plain = _PLAIN_UTC.fullmatch(raw)
    if plain is not None:
        try:
            datetime.fromisoformat(raw)
        except ValueError:
            return None
        return f"{plain[1]}.{(plain[2] or '').ljust(6, '0')}+00:00"
    when = parse_timestamp(raw)
    return None if when is None else when.astimezone(UTC).isoformat(timespec="microseconds")


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _authorized(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def init_feedback(app: Flask, store: Any) -> None:
    """Register POST /feedback (it needs the audit log: FEEDBACK_TOKEN turns both on)."""
    monitoring = app.extensions["monitoring"]
    directory = monitoring.settings["PREDICTION_LOG_DIR"]
    if app.config["FEEDBACK_TOKEN"] and directory is not None:
        limit = max(monitoring.settings["PERFORMANCE_WINDOW"], 1_000_000)
        app.extensions["feedback"] = Feedback(app, Path(directory), store, limit)
    app.register_blueprint(bp)


@bp.post("/feedback")
def feedback() -> tuple[Response, int]:
    """Record one label or a batch (module docstring)."""
    state: Feedback | None = current_app.extensions.get("feedback")
    if state is None:
        return _answer(404, error_payload("not_found", "feedback is off (no FEEDBACK_TOKEN)"))
    if not _authorized(state.token):
        body = error_payload("unauthorized", "a valid bearer token is required")
        response, status = _answer(401, body)
        response.headers["WWW-Authenticate"] = 'Bearer realm="feedback"'
        return response, status
    try:
        check_content_type(request.content_type or "")
        # read_body, not get_data: a chunked body over the limit is a 413, not an empty body
        body = parse_json(read_body(request.environ, current_app.config["MAX_CONTENT_LENGTH"]))
        return _answer(200, _handle(state, body))
    except ApiError as exc:
        return _answer(exc.status, error_payload(exc.error, exc.message, exc.details))


def _handle(state: Feedback, body: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    if isinstance(body, dict) and "labels" in body:
        items = body["labels"]
        if not isinstance(items, list) or not items:
            raise ApiError(
                422, "validation_error", "invalid batch", [_error("labels", "non-empty array")]
            )
        if len(items) > state.max_batch:
            raise ApiError(
                413,
                "payload_too_large",
                f"batch has {len(items)} labels; at most {state.max_batch}",
            )
        results: list[dict[str, Any]] = []
        valid, where = [], []
        for i, (label, errors) in enumerate(validate_labels(items, now)):
            if errors:
                results.append({"index": i, "errors": errors})
            else:
                results.append({"index": i})
                valid.append(label)
                where.append(i)
        for i, result in zip(where, state.submit(valid) if valid else [], strict=True):
            results[i] |= result
        seen = Counter(r.get("status") for r in results)
        counts = {f"n_{s}": seen[s] for s in STATUSES}
        counts["n_errors"] = len(results) - len(valid)
        return {"results": results, **counts}
    label, errors = validate_label(body, now)
    if errors:
        raise ApiError(422, "validation_error", "invalid label", errors)
    (result,) = state.submit([label])
    if result["status"] == "unknown":
        raise ApiError(
            404,
            "unknown_transaction",
            f"no prediction has transaction_id {label['transaction_id']!r}",
        )
    return result


def _answer(status: int, body: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(body), status
