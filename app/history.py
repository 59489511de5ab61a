"""Where a scored transaction's history comes from: the request, or the online store.

Precedence, per transaction: one or more history fields in the request -> the request's
(stateless mode, as clients of the first API send it: absent fields take a first transaction's
values) and the store is neither read nor written; no history field -> the service computes
every history field from its online store as of the transaction's timestamp, then records the
transaction (``transaction_id``, ``user_id``, ``timestamp`` and the model's other entity ids are
then required). Each answer says which in ``history_source``: ``request``, ``store``, or
``none`` (no store configured, no history sent: scored as a first transaction, with a warning).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import ApiError
from fraud.data import schema
from fraud.store import OnlineStore, StoreUnavailableError
from fraud.store.layout import time_ms

logger = logging.getLogger(__name__)

REQUEST, STORE, NONE = "request", "store", "none"
#: How far ahead of the server's clock a transaction's timestamp may be (clock skew).
MAX_CLOCK_SKEW_MS = 300_000
DUPLICATE_WARNING = "transaction_id was already recorded: scored again, not counted twice"
NO_HISTORY_WARNING = (
    "no history sent and no feature store configured: scored as the user's first transaction"
)


@dataclass
class Sourced:
    """A batch's history: per record its source, the store's columns for the store records
    (``rows``: their positions), per-record errors (refused: not scored) and the positions of
    transactions the store had already recorded."""

    sources: list[str]
    rows: list[int]
    columns: dict[str, np.ndarray] | None
    errors: dict[int, list[dict[str, str]]]
    duplicates: frozenset[int] = frozenset()


class HistorySource:
    """Decides each record's history source and runs the store's read-compute-write."""

    def __init__(
        self, store: OnlineStore | None, history_columns: Sequence[str], metrics: Any = None
    ) -> None:
        self.store = store
        self.metrics = metrics  # app.metrics.Metrics, or None
        self.history = frozenset(history_columns)
        features = store.features if store is not None else None
        #: what a record must carry for the store: ids, time, and the raw columns whose prior
        #: use the novelty flags check (a device_id the model reads without a device entity)
        self.required = (
            list(
                dict.fromkeys(
                    [
                        schema.TRANSACTION_ID,
                        schema.TIMESTAMP,
                        *features.entity_columns,
                        *features.novelty.values(),
                    ]
                )
            )
            if features is not None
            else []
        )
        self.lateness_s = store.features.lateness // 1000 if store is not None else 0

    def resolve(self, records: Sequence[dict[str, Any]]) -> Sourced:
        """Every record's source; the store's history of those without history fields.

        Raises ApiError 503 when the store cannot be used (nothing was recorded).
        """
        sources: list[str] = []
        rows: list[int] = []
        times: list[int] = []  # ms of each of ``rows``, parsed once
        errors: dict[int, list[dict[str, str]]] = {}
        limit = int(time.time() * 1000) + MAX_CLOCK_SKEW_MS
        for i, record in enumerate(records):
            if not self.history.isdisjoint(record.keys()):
                sources.append(REQUEST)
                continue
            if self.store is None:
                sources.append(NONE)
                continue
            sources.append(STORE)
            missing = [
                {
                    "field": name,
                    "message": "is required when the service computes the history "
                    "(no history field sent)",
                }
                for name in self.required
                if name not in record
            ]
            if missing:
                errors[i] = missing
                continue
            t = time_ms(record[schema.TIMESTAMP])
            if t > limit:
                ahead = f"is more than {MAX_CLOCK_SKEW_MS // 1000} s ahead of the server's clock"
                errors[i] = [_error(schema.TIMESTAMP, ahead)]
            elif t < 0:
                errors[i] = [_error(schema.TIMESTAMP, "must be after 1970-01-01T00:00:00Z")]
            else:
                rows.append(i)
                times.append(t)
        if self.metrics is not None:
            self.metrics.observe_sources(sources)
        if not rows:
            return Sourced(sources, rows, None, errors)
        assert self.store is not None
        store_records = [records[i] for i in rows]
        started = time.perf_counter()
        try:
            result = self.store.record(self.store.batch_of_records(store_records, times))
        except StoreUnavailableError as exc:
            if self.metrics is not None:
                self.metrics.observe_store(time.perf_counter() - started, "unavailable", {})
            logger.error("feature store unavailable: %s", exc)
            raise ApiError(
                503,
                "feature_store_unavailable",
                f"the online feature store cannot be used ({exc}); nothing was recorded, "
                "retry later or send the history fields",
            ) from None
        if self.metrics is not None:
            n_late, n_duplicate = int(result.late.sum()), int(result.duplicate.sum())
            counts = {
                "recorded": len(rows) - n_late - n_duplicate,
                "duplicate": n_duplicate,
                "late": n_late,
            }
            self.metrics.observe_store(time.perf_counter() - started, "ok", counts)
        keep = ~result.late
        for k in np.flatnonzero(result.late).tolist():
            entity = result.late_entity[k]
            errors[rows[k]] = [
                _error(
                    schema.TIMESTAMP,
                    f"is older than the feature store keeps for this {entity}: at most "
                    f"{self.lateness_s} s before its latest transaction can be scored",
                )
            ]
        columns = (
            result.history
            if keep.all()
            else {name: np.asarray(values)[keep] for name, values in result.history.items()}
        )
        refused_or_new = result.late | ~result.duplicate
        duplicates = frozenset(rows[k] for k in np.flatnonzero(~refused_or_new).tolist())
        kept = [r for r, k in zip(rows, keep.tolist(), strict=True) if k]
        return Sourced(sources, kept, columns, errors, duplicates)


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}
