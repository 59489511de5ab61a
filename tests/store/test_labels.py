"""Labels that arrive late reach the online store's risk features exactly as offline: only once
their transaction is older than the label delay."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud.features.history import history_arrays
from fraud.features.state import fit_state
from fraud.store import OnlineStore, open_backend
from fraud.store.labels import Labels
from fraud.store.online import OnlineFeatures
from tests.store.test_online import frame_batch, replay, store_url  # noqa: F401 - fixture
from tests.unit.test_entities import CFG
from tests.unit.test_features import random_frame


def labels_of(store: OnlineStore, df: pd.DataFrame) -> Labels:
    batch = frame_batch(store, df, labels=True)
    return Labels(batch.t, batch.id, batch.label, batch.entities)


def risk_columns(names: list[str]) -> list[str]:
    return [n for n in names if "labelled_count" in n or "fraud_count" in n]


def test_feedback_labels_reach_risk_features_after_the_delay_as_offline(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    """Days 0-4 materialized with labels; days 4-8 recorded live (no label), then labelled in
    chunks by feedback; days 8-12 recorded live: their history is the offline one of the
    whole frame with days 8-12 unlabelled, and differs from it without the feedback."""
    df = random_frame(1500, 40, seed=8, span_days=12).sort_values("timestamp", kind="stable")
    df = df.reset_index(drop=True)
    days = (df["timestamp"] - df["timestamp"].min()).dt.total_seconds() / 86_400
    old, live, later = df[days < 4], df[(days >= 4) & (days < 8)], df[days >= 8]
    state = fit_state(df, CFG)
    store = OnlineStore(open_backend(store_url), OnlineFeatures(state, 0))
    replay(store, old, [100], labels=True)
    replay(store, live, [1, 40], labels=False)
    found = np.concatenate(
        [store.label(labels_of(store, live.iloc[i : i + 97])) for i in range(0, len(live), 97)]
    )
    assert found.all()
    again = store.label(labels_of(store, live.iloc[:50]))  # idempotent: the same labels again
    assert again.all()
    got = replay(store, later, [1, 25], labels=False)

    offline = df.copy()
    offline.loc[later.index, "is_fraud"] = np.nan  # not labelled yet when scored
    want = history_arrays(offline, CFG)
    unlabelled = offline.copy()
    unlabelled.loc[live.index, "is_fraud"] = np.nan
    without = history_arrays(unlabelled, CFG)
    rows = later.index.to_numpy()
    differs = False
    for name in state.history_columns:
        values = np.concatenate([r.history[name] for r in got])
        np.testing.assert_allclose(values, want[name][rows], rtol=1e-9, atol=1e-9, err_msg=name)
        differs |= not np.allclose(values, without[name][rows], equal_nan=True)
    assert risk_columns(state.history_columns)
    assert differs, "the feedback labels changed no risk feature: the test proves nothing"


def test_a_label_is_invisible_before_the_delay_and_visible_after(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    df = random_frame(300, 5, seed=9, span_days=3).sort_values("timestamp", kind="stable")
    df = df.reset_index(drop=True)
    state = fit_state(df, CFG)
    store = OnlineStore(open_backend(store_url), OnlineFeatures(state, 86_400_000))
    first = df.iloc[:1].copy()
    first["is_fraud"] = 1
    replay(store, first, [1], labels=False)
    assert store.label(labels_of(store, first)).all()
    delay = pd.Timedelta(days=CFG.label_delay_days)
    probes = []
    # offline: at t, the labels of transactions strictly before t - delay
    for k, offset in enumerate([delay, delay + pd.Timedelta(milliseconds=1)]):
        probe = first.copy()
        probe["transaction_id"] = f"probe{k}"
        probe["timestamp"] = first["timestamp"] + offset
        probes.append(replay(store, probe, [1], labels=False)[0])
    entity = next(e for e in store.features.entities if e.risk)
    name = f"{entity.prefix}_fraud_count_{entity.risk[0][0]}"
    assert [float(p.history[name][0]) for p in probes] == [0.0, 1.0]


def test_a_transaction_labelled_twice_in_one_call_gets_the_later_label(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    df = random_frame(300, 10, seed=3, span_days=3).sort_values("timestamp", kind="stable")
    df = df.reset_index(drop=True)
    store = OnlineStore(open_backend(store_url), OnlineFeatures(fit_state(df, CFG), 0))
    replay(store, df, [60], labels=False)
    some = labels_of(store, df.iloc[:4])
    twice = Labels(
        t=np.r_[some.t, some.t[:1], some.t[:1] + 1],  # the last: not that transaction's time
        id=np.r_[some.id, some.id[:1], some.id[:1]],
        label=np.array([0, 0, 0, 0, 1, 0], dtype=np.int8),
        entities={c: [*v, v[0], v[0]] for c, v in some.entities.items()},
    )
    assert store.label(twice).tolist() == [True, True, True, True, True, False]
    stored = {}
    from fraud.store.layout import EVENT, EVENT_PARTS

    for _, part, data in store.backend.scan():
        if part in EVENT_PARTS:
            events = np.frombuffer(data, EVENT)
            stored |= dict(zip(events["id"].tolist(), events["label"].tolist(), strict=True))
    assert [stored[i] for i in some.id.tolist()] == [1, 0, 0, 0]
