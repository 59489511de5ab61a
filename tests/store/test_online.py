"""The online store's history equals the offline pipeline's, transaction by transaction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud.features.history import history_arrays
from fraud.features.state import fit_state
from fraud.store import OnlineStore, open_backend, store_size
from fraud.store.layout import EVENT, EVENT_PARTS, Batch
from fraud.store.online import OnlineFeatures
from stages import materialize
from tests.unit.test_entities import CFG
from tests.unit.test_features import random_frame


def frame_batch(store: OnlineStore, df: pd.DataFrame, labels: bool) -> Batch:
    """``df`` as materialize records it, or as live traffic (no label known) when not
    ``labels``."""
    batch = materialize.frame_batch(df, store.features)
    if not labels:
        batch.label[:] = -1
    return batch


def replay(store: OnlineStore, df: pd.DataFrame, sizes: list[int], labels: bool):
    out, i, k = [], 0, 0
    while i < len(df):
        size = sizes[k % len(sizes)]
        out.append(store.record(frame_batch(store, df.iloc[i : i + size], labels)))
        i, k = i + size, k + 1
    return out


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each real backend: a SQLite file, an empty real Redis."""
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return f"sqlite:///{tmp_path}/s.db"


@pytest.mark.parametrize("sizes", [[1], [7, 1, 50, 3], [1000]])
def test_replay_in_time_order_equals_offline(store_url: str, sizes: list[int]) -> None:
    df = random_frame(800, 40, seed=5, span_days=12).sort_values("timestamp", kind="stable")
    df = df.reset_index(drop=True)
    state = fit_state(df, CFG)
    want = history_arrays(df, CFG)
    store = OnlineStore(open_backend(store_url), OnlineFeatures(state, 0))
    results = replay(store, df, sizes, labels=True)
    assert not any(r.late.any() or r.duplicate.any() for r in results)
    for name in state.history_columns:
        got = np.concatenate([r.history[name] for r in results])
        np.testing.assert_allclose(got, want[name], rtol=1e-9, atol=1e-9, err_msg=name)


def test_out_of_order_and_resent_transactions_are_stored_in_order_once(store_url: str) -> None:
    """Arrivals up to a day late are stored as of their own time: re-sending everything
    afterwards answers exactly the offline history and counts nothing twice (duplicates; the
    oldest are past the store's horizon and refused as late)."""
    df = random_frame(800, 40, seed=6, span_days=12).sort_values("timestamp", kind="stable")
    df = df.reset_index(drop=True)
    state = fit_state(df, CFG)
    want = history_arrays(df, CFG)
    rng = np.random.default_rng(0)
    jitter = pd.to_timedelta(rng.integers(0, 20 * 3600, len(df)), unit="s")
    shuffled = df.iloc[np.argsort((df["timestamp"] + jitter).to_numpy(), kind="stable")]
    store = OnlineStore(open_backend(store_url), OnlineFeatures(state, 86_400_000))
    first = replay(store, shuffled, [1, 9, 30], labels=True)
    assert not any(r.late.any() or r.duplicate.any() for r in first)
    again = replay(store, df, [13, 1, 200], labels=True)
    duplicate = np.concatenate([r.duplicate for r in again])
    late = np.concatenate([r.late for r in again])
    assert (duplicate | late).all()
    assert not (duplicate & late).any()
    assert duplicate.sum() > 100
    for name in state.history_columns:
        got = np.concatenate([r.history[name] for r in again])
        np.testing.assert_allclose(
            got[~late], want[name][~late], rtol=1e-9, atol=1e-9, err_msg=name
        )


def test_state_is_bounded_and_too_late_transactions_are_refused(store_url: str) -> None:
    df = random_frame(3000, 20, seed=7, span_days=60).sort_values("timestamp", kind="stable")
    df = df.reset_index(drop=True)
    state = fit_state(df, CFG)
    want = history_arrays(df, CFG)
    backend = open_backend(store_url)
    store = OnlineStore(backend, OnlineFeatures(state, 0))
    results = replay(store, df, [250], labels=True)
    for name in state.history_columns:
        got = np.concatenate([r.history[name] for r in results])
        np.testing.assert_allclose(got, want[name], rtol=1e-9, atol=1e-9, err_msg=name)
    # each key keeps the events its longest reach needs before its latest (merchant: 3 d risk
    # + 1 d delay), from the start of the day that reach begins in
    kept: dict[str, list[np.ndarray]] = {}
    for key, part, data in backend.scan():
        if part in EVENT_PARTS:
            kept.setdefault(key, []).append(np.frombuffer(data, dtype=EVENT)["t"])
    assert any(len(parts) == 2 for parts in kept.values())  # sealed days and an open one
    for parts in kept.values():
        t = np.concatenate(parts)
        assert t.max() - t.min() < 5 * 86_400_000
    events = sum(v["events"] for v in store_size(backend).values())
    assert events < 3 * len(df) / 2  # three entities, about a quarter of the span kept
    old = df.iloc[[len(df) // 2]].assign(transaction_id="late-1")
    result = store.record(frame_batch(store, old, labels=False))
    assert result.late.tolist() == [True]
    assert result.late_entity[0] is not None


def test_a_late_resend_is_late_not_duplicate_and_batch_duplicates_are_per_card(
    store_url: str,
) -> None:
    """A quiet card still keeps a transaction its busy merchant has folded: re-sending it is
    refused as late (never also called a duplicate). In one batch, an id is a duplicate only
    of an earlier on-time row of the same card."""
    df = random_frame(40, 5, seed=8, span_days=1).sort_values("timestamp", kind="stable")
    state = fit_state(df, CFG)
    store = OnlineStore(open_backend(store_url), OnlineFeatures(state, 0))
    day = pd.Timedelta(days=1)
    quiet = df.iloc[[0]].assign(user_id="quiet", device_id="dq", merchant_id="busy")
    busy = pd.concat(
        [
            df.iloc[[i % len(df)]].assign(
                user_id="other",
                device_id="do",
                merchant_id="busy",
                transaction_id=f"b{i}",
                timestamp=quiet["timestamp"].iloc[0] + (i + 1) * 2 * day,
            )
            for i in range(12)
        ]
    )
    store.record(frame_batch(store, quiet, labels=False))
    store.record(frame_batch(store, busy, labels=False))
    again = store.record(frame_batch(store, quiet, labels=False))
    assert again.late.tolist() == [True]
    assert again.late_entity == ["merchant_id"]
    assert again.duplicate.tolist() == [False]
    now = busy["timestamp"].iloc[-1] + day
    pair = pd.concat([quiet, quiet.assign(user_id="second")]).assign(
        transaction_id="same", timestamp=now
    )
    twice = pd.concat([pair.iloc[[0]].assign(timestamp=now - 30 * day), pair])
    result = store.record(frame_batch(store, twice, labels=False))
    assert result.late.tolist() == [True, False, False]  # the first copy: too old
    assert result.duplicate.tolist() == [False, False, False]  # two cards: both recorded
    later = store.record(frame_batch(store, pair.assign(timestamp=now + day), labels=False))
    assert later.history["user_transaction_count"].tolist() == [2, 1]  # quiet: q, same
    assert later.duplicate.tolist() == [True, True]
