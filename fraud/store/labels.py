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

from fraud.store.layout import (
    EVENT,
    SPLIT_EVENTS,
    Changes,
    Loaded,
    events_blob,
    save_events,
    split_at,
)

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
    key); the events parts that changed. A transaction labelled twice in ``labels`` gets the
    later label.

    Vectorised over every key at once (a batch of labels touches thousands of keys): the
    keys' events are concatenated and matched to the labels by (key, event id, time), through
    a 64-bit mix of the three checked field by field.
    """
    found = np.zeros(len(labels), dtype=bool)
    index: dict[str, int] = {}
    key_of, row_of = [], []
    for e in features.entities:
        if e.risk:
            for i, value in enumerate(labels.entities[e.column]):
                key_of.append(index.setdefault(f"{e.prefix}:{value}", len(index)))
                row_of.append(i)
    keys = list(index)
    blobs = [events_blob(loaded.get(key, {})) for key in keys]
    events = np.frombuffer(b"".join(blobs), EVENT).copy()
    if not len(events) or not row_of:
        return found, {}
    sizes = np.array([len(blob) // EVENT.itemsize for blob in blobs], dtype=np.int64)
    bounds = np.r_[0, np.cumsum(sizes)]
    event_key = np.repeat(np.arange(len(keys)), sizes)
    lab_key, lab_row = np.array(key_of, dtype=np.int64), np.array(row_of, dtype=np.int64)
    lab_code = _code(lab_key, labels.id[lab_row], labels.t[lab_row])
    order = np.lexsort((lab_row, lab_code))  # by code, then in the order given
    codes = lab_code[order]
    last = np.r_[codes[1:] != codes[:-1], True]  # a transaction's last label wins
    codes, winner = codes[last], order[last]
    event_code = _code(event_key, events["id"], events["t"])
    pos = np.searchsorted(codes, event_code).clip(max=len(codes) - 1)
    w = winner[pos]
    match = (
        (codes[pos] == event_code)
        & (lab_key[w] == event_key)
        & (labels.id[lab_row[w]] == events["id"])
        & (labels.t[lab_row[w]] == events["t"])
    )
    at = np.flatnonzero(match)
    hit = np.zeros(len(codes), dtype=bool)
    hit[pos[at]] = True
    found[lab_row[hit[np.searchsorted(codes, lab_code)]]] = True
    new = labels.label[lab_row[w[at]]]
    changed = at[events["label"][at] != new]
    events["label"][at] = new
    changes: Changes = {}
    for k in np.unique(event_key[changed]).tolist():
        mine = events[bounds[k] : bounds[k + 1]]
        part = changes[keys[k]] = {}
        at = split_at(mine["t"]) if len(mine) > SPLIT_EVENTS else 0
        save_events(part, loaded.get(keys[k], {}), mine.tobytes(), at)
    return found, changes


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


def _code(key: np.ndarray, ids: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A 64-bit mix of (key index, event id, time), to sort and search by."""
    with np.errstate(over="ignore"):
        return (
            ids.astype(np.uint64)
            ^ (key.astype(np.uint64) * _MIX[0])
            ^ (t.astype(np.uint64) * _MIX[1])
        )
