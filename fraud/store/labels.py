"""Labels that arrive after the fact (``POST /feedback``): set on the stored events they belong to.

A live transaction is recorded unlabelled (``label`` -1). When its label arrives, the events
of its keys whose entity has risk windows get it; ``fraud.store.online`` then counts it exactly
as the offline history does: for a transaction at ``t``, only labels of events in
``[t - label_delay - window, t - label_delay)``. So a label becomes visible to the risk
features once its transaction is older than the label delay, whenever it arrived, and
never earlier (as ``fraud.features.history._risk_columns`` assumes offline). An event already
folded out of its key is past every risk window: nothing to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fraud.store.layout import EVENT, EVENTS_PART, Changes, Loaded

if TYPE_CHECKING:
    from fraud.store.online import OnlineFeatures


@dataclass
class Labels:
    """Labels of recorded transactions, as columns: each transaction's time and event id (as
    ``Batch`` has them), its label (1 fraud, 0 legitimate) and its entity ids."""

    t: np.ndarray  # int64 ms since the epoch
    id: np.ndarray  # int64 event ids (``fraud.store.layout.event_id``)
    label: np.ndarray  # int8
    entities: Mapping[str, Sequence[str]]  # id column -> ids

    def __len__(self) -> int:
        return len(self.t)


def label_keys(features: OnlineFeatures, labels: Labels) -> list[str]:
    """The keys whose events carry labels that matter: those of entities with risk windows."""
    return list(
        dict.fromkeys(
            f"{e.prefix}:{v}"
            for e in features.entities
            if e.risk
            for v in labels.entities[e.column]
        )
    )


def relabel(
    features: OnlineFeatures, loaded: Loaded, labels: Labels
) -> tuple[np.ndarray, Changes]:
    """Per label, whether a stored event of the transaction was found (on any risk entity's
    key); the events parts that changed."""
    found = np.zeros(len(labels), dtype=bool)
    wanted: dict[str, list[int]] = {}
    for e in features.entities:
        if e.risk:
            for i, value in enumerate(labels.entities[e.column]):
                wanted.setdefault(f"{e.prefix}:{value}", []).append(i)
    changes: Changes = {}
    for key, rows in wanted.items():
        blob = loaded.get(key, {}).get(EVENTS_PART)
        if not blob:
            continue
        events = np.frombuffer(blob, EVENT).copy()
        t = events["t"]
        changed = False
        for i in rows:
            lo = int(t.searchsorted(labels.t[i], side="left"))
            hi = int(t.searchsorted(labels.t[i], side="right"))
            at = lo + np.flatnonzero(events["id"][lo:hi] == labels.id[i])
            if not at.size:
                continue
            found[i] = True
            if (events["label"][at] != labels.label[i]).any():
                events["label"][at] = labels.label[i]
                changed = True
        if changed:
            changes[key] = {EVENTS_PART: events.tobytes()}
    return found, changes
