"""The tree evaluator against XGBoost itself and against a plain-Python reference.

Every test runs twice: with the C kernel (``fraud.runtime.native``) and with the numpy fallback.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from fraud.model.compile import compile_booster
from fraud.runtime import native
from fraud.runtime.trees import BATCH_CHUNK, CompiledTrees
from tests.tiny_model import TinyModel

N_FEATURES = 8


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic features with ~15% NaNs and a label that depends on several of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)) * np.array([1, 10, 0.1, 100, 1, 1, 3, 1])
    x[:, 7] = rng.integers(0, 5, size=n)  # a discrete column: many rows sit on thresholds
    logit = x[:, 0] + 0.2 * x[:, 1] - 5 * x[:, 2] + 0.01 * x[:, 3] + (x[:, 7] == 2)
    x[rng.random(x.shape) < 0.15] = np.nan
    # Missingness of column 4 is itself informative, so learned default directions differ.
    logit += np.where(np.isnan(x[:, 4]), 2.0, -0.5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return x, y


def _train(rounds: int, seed: int = 0, **params: object) -> xgb.Booster:
    x, y = _data(2000, seed)
    base = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "nthread": 1}
    return xgb.train({**base, **params, "seed": seed}, xgb.DMatrix(x, y), rounds)


def _rows(n: int, seed: int, compiled: CompiledTrees) -> np.ndarray:
    """Held-out rows plus rows sitting exactly on, and just below, split thresholds."""
    x, _ = _data(n, seed)
    rng = np.random.default_rng(seed)
    internal = np.flatnonzero(compiled.left >= 0)
    edge = np.tile(np.nanmedian(x, axis=0), (n if internal.size else 0, 1))
    for i, node in enumerate(rng.choice(internal, size=len(edge))):
        t = compiled.threshold[node]
        edge[i, compiled.feature[node]] = rng.choice(
            [t, np.nextafter(t, np.float32(-np.inf)), float(t) - 1e-12, np.nan]
        )
    all_missing = np.full((1, N_FEATURES), np.nan)
    return np.vstack([x, edge, all_missing])


def use_evaluator(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make ``CompiledTrees`` run the C kernel (``native``) or the numpy code (``numpy``)."""
    monkeypatch.setenv("FRAUD_NATIVE", "1" if name == "native" else "0")
    native.kernel.cache_clear()
    if name == "native":
        assert native.kernel() is not None, "the C kernel did not build (see the warning)"


@pytest.fixture(autouse=True, params=["native", "numpy"])
def evaluator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    use_evaluator(monkeypatch, request.param)
    yield request.param
    native.kernel.cache_clear()


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    return _train(30)


@pytest.fixture(scope="module")
def compiled(booster: xgb.Booster) -> CompiledTrees:
    return compile_booster(booster)


def _stump_booster() -> xgb.Booster:
    return _train(20, max_depth=1)


def _leaf_only_booster() -> xgb.Booster:
    # No split can reach the child weight: every tree is a single leaf.
    return _train(3, min_child_weight=1e9)


def _mixed_depth_booster() -> xgb.Booster:
    # Loss-guided growth with few leaves: unbalanced trees whose leaves sit at many depths.
    return _train(15, max_depth=6, grow_policy="lossguide", max_leaves=5, tree_method="hist")


BOOSTERS = {
    "depth4": lambda: _train(30),
    "stumps": _stump_booster,
    "single-leaf": _leaf_only_booster,
    "mixed-depth": _mixed_depth_booster,
}


@pytest.fixture(scope="module", params=list(BOOSTERS), ids=list(BOOSTERS))
def case(request: pytest.FixtureRequest) -> tuple[xgb.Booster, CompiledTrees, np.ndarray]:
    b = BOOSTERS[request.param]()
    c = compile_booster(b)
    return b, c, _rows(500, 11, c)


def test_shapes_of_the_cases(case: tuple[xgb.Booster, CompiledTrees, np.ndarray]) -> None:
    b, c, _ = case
    assert c.n_trees == b.num_boosted_rounds()
    assert c.n_features == N_FEATURES
    assert c.max_depth <= 6


def test_leaf_only_booster_really_has_no_splits() -> None:
    c = compile_booster(_leaf_only_booster())
    assert c.max_depth == 0
    assert (c.left < 0).all()


def test_probability_and_margin_match_inplace_predict(
    case: tuple[xgb.Booster, CompiledTrees, np.ndarray],
) -> None:
    b, c, x = case
    expected = b.inplace_predict(x).astype(np.float64)
    assert np.abs(c.predict_proba(x) - expected).max() < 1e-6
    # XGBoost sums leaf values in float32 tree by tree; the evaluator does the same.
    np.testing.assert_array_equal(c.margin(x), b.inplace_predict(x, predict_type="margin"))


def test_contributions_match_approx_contribs(
    case: tuple[xgb.Booster, CompiledTrees, np.ndarray],
) -> None:
    b, c, x = case
    got = c.contributions(x)
    expected = b.predict(xgb.DMatrix(x), pred_contribs=True, approx_contribs=True)
    assert got.shape == (len(x), N_FEATURES + 1)
    assert np.abs(got - expected).max() < 1e-5


def test_contribution_rows_sum_to_the_margin(
    case: tuple[xgb.Booster, CompiledTrees, np.ndarray],
) -> None:
    _, c, x = case
    np.testing.assert_allclose(c.contributions(x).sum(axis=1), c.margin(x), rtol=0, atol=1e-5)


def test_batch_paths_agree(case: tuple[xgb.Booster, CompiledTrees, np.ndarray]) -> None:
    _, c, x = case
    proba, contributions = c.predict_with_contributions(x)
    np.testing.assert_array_equal(proba, c.predict_proba(x))
    np.testing.assert_array_equal(contributions, c.contributions(x))


def one_row(trees: CompiledTrees, row: np.ndarray) -> tuple[float, np.ndarray]:
    """Probability and contributions of one row, through the same entry point as a batch."""
    probabilities, contributions = trees.predict_with_contributions(row[None, :])
    return float(probabilities[0]), contributions[0]


def test_one_row_equals_the_batch_row_exactly(
    case: tuple[xgb.Booster, CompiledTrees, np.ndarray],
) -> None:
    _, c, x = case
    proba, contributions = c.predict_with_contributions(x)
    for i in [0, 1, BATCH_CHUNK - 1, BATCH_CHUNK, len(x) - 2, len(x) - 1]:
        p, contrib = one_row(c, x[i])
        assert isinstance(p, float)
        assert p == proba[i]
        np.testing.assert_array_equal(contrib, contributions[i])
    # Batches of every awkward size give the same rows too (single-row chunks included).
    for n in (1, 2, BATCH_CHUNK + 1):
        np.testing.assert_array_equal(c.predict_proba(x[-n:]), proba[-n:])
        np.testing.assert_array_equal(c.contributions(x[-n:]), contributions[-n:])


def test_the_c_kernel_and_numpy_agree_bit_for_bit(
    case: tuple[xgb.Booster, CompiledTrees, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, c, x = case
    x = np.vstack([x, np.full((3, N_FEATURES), np.inf), np.full((3, N_FEATURES), -1e300)])
    got = {}
    for name in ("native", "numpy"):
        use_evaluator(monkeypatch, name)
        got[name] = (c.margin(x), *c.predict_with_contributions(x), *one_row(c, x[-1]))
    for native_part, numpy_part in zip(got["native"], got["numpy"], strict=True):
        np.testing.assert_array_equal(native_part, numpy_part)


def _wide_range_ensemble(rng: np.random.Generator, n_trees: int, depth: int) -> CompiledTrees:
    """Complete trees on one feature with leaf values from 1e-8 to 1e8: sums of their
    contributions round, so any difference in the order of additions shows."""
    n_internal, n_nodes = 2**depth - 1, 2 ** (depth + 1) - 1
    node = np.arange(n_nodes)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "value", "cover")}
    for t in range(n_trees):
        offset = t * n_nodes
        parts["left"].append(np.where(node < n_internal, 2 * node + 1 + offset, -1))
        parts["right"].append(np.where(node < n_internal, 2 * node + 2 + offset, -1))
        leaves = rng.standard_normal(n_nodes - n_internal) * 10.0 ** rng.integers(-8, 8, 4)
        parts["value"].append(np.r_[np.zeros(n_internal), leaves].astype(np.float32))
        parts["cover"].append(2.0 ** (depth - np.floor(np.log2(node + 1))).astype(np.float32))
    total = n_trees * n_nodes
    return CompiledTrees(
        feature=np.zeros(total, dtype=np.intp),
        threshold=np.tile(np.linspace(0.1, 0.9, n_nodes, dtype=np.float32), n_trees),
        left=np.concatenate(parts["left"]),
        right=np.concatenate(parts["right"]),
        default_left=np.tile(node % 2 == 0, n_trees),
        leaf_value=np.concatenate(parts["value"]),
        cover=np.concatenate(parts["cover"]),
        roots=np.arange(n_trees) * n_nodes,
        base_margin=0.0,
        n_features=1,
        max_depth=depth,
    )


def test_contributions_add_up_in_one_order_on_every_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real models hide the order (their sums happen to be exact in float64); these do not.
    rng = np.random.default_rng(0)
    for _ in range(100):
        trees = _wide_range_ensemble(rng, n_trees=3, depth=2)
        x = rng.choice([0.0, 0.3, 0.6, 1.0, np.nan], size=(8, 1))
        got = {}
        for name in ("native", "numpy"):
            use_evaluator(monkeypatch, name)
            got[name] = [trees.margin(x), trees.contributions(x)]
            got[name] += [part for row in x for part in one_row(trees, row)]
        for native_part, numpy_part in zip(got["native"], got["numpy"], strict=True):
            np.testing.assert_array_equal(native_part, numpy_part)


def test_any_memory_layout_gives_the_same_numbers(
    case: tuple[xgb.Booster, CompiledTrees, np.ndarray],
) -> None:
    # pandas hands over column-major arrays; views may be strided
    _, c, x = case
    wide = np.repeat(x, 2, axis=1)
    layouts = [np.asfortranarray(x), wide[:, ::2], x.astype(np.float32), x[::-1][::-1]]
    for other in layouts:
        np.testing.assert_array_equal(c.margin(other), c.margin(x))
        np.testing.assert_array_equal(c.contributions(other), c.contributions(x))


def test_booster_learned_both_default_directions(compiled: CompiledTrees) -> None:
    internal = compiled.left >= 0
    assert compiled.default_left[internal].any()
    assert not compiled.default_left[internal].all()


def test_missing_values_follow_the_default_direction() -> None:
    booster = _train(1, max_depth=3)
    compiled = compile_booster(booster)
    x = _data(500, 3)[0]
    margins = compiled.margin(x)
    np.testing.assert_array_equal(margins, booster.inplace_predict(x, predict_type="margin"))
    # The same trees with every default direction flipped score these rows differently, so
    # the parity above depends on missing values being routed the way XGBoost learned.
    state = compiled.__getstate__()
    flipped = CompiledTrees(**{**state, "default_left": ~compiled.default_left})
    changed = flipped.margin(x) != margins
    assert changed.any()
    assert np.isnan(x[changed]).any(axis=1).all()


def _stump(threshold: float, default_left: bool) -> CompiledTrees:
    """One tree: x0 < threshold -> leaf -1, else leaf +1; missing goes as told."""
    return CompiledTrees(
        feature=np.array([0, 0, 0], dtype=np.intp),
        threshold=np.array([threshold, 0, 0], dtype=np.float32),
        left=np.array([1, -1, -1], dtype=np.intp),
        right=np.array([2, -1, -1], dtype=np.intp),
        default_left=np.array([default_left, False, False]),
        leaf_value=np.array([0, -1, 1], dtype=np.float32),
        cover=np.array([2, 1, 1], dtype=np.float32),
        roots=np.array([0], dtype=np.intp),
        base_margin=0.0,
        n_features=1,
        max_depth=1,
    )


@pytest.mark.parametrize("default_left", [True, False])
def test_split_rule_is_float32_less_than_with_nan_to_default(default_left: bool) -> None:
    t = np.float32(0.1)  # not exactly representable: float64 values round onto it
    below = float(np.nextafter(t, np.float32(-np.inf)))
    just_below_t_in_float64 = float(t) - 1e-12  # float32(...) == t, so it goes right
    x = np.array([[below], [float(t)], [just_below_t_in_float64], [np.nan], [-np.inf], [np.inf]])
    margins = _stump(float(t), default_left).margin(x)
    nan_side = -1.0 if default_left else 1.0
    np.testing.assert_array_equal(margins, [-1, 1, 1, nan_side, -1, 1])


@pytest.mark.parametrize("default_left", [True, False])
@pytest.mark.parametrize("threshold", [np.inf, -np.inf])
def test_infinite_thresholds(threshold: float, default_left: bool) -> None:
    x = np.array([[-np.inf], [0.0], [np.inf], [np.nan]])
    margins = _stump(threshold, default_left).margin(x)
    expected = [-1.0 if v < threshold else 1.0 for v in np.float32(x[:3, 0])]
    np.testing.assert_array_equal(margins, [*expected, -1.0 if default_left else 1.0])


def test_contributions_of_a_hand_built_tree() -> None:
    # Root mean (1*-1 + 3*1)/4 = 0.5 is the bias; going left credits x0 with -1 - 0.5.
    c = CompiledTrees(**{**_stump(0.0, True).__getstate__(), "cover": np.float32([4, 1, 3])})
    np.testing.assert_allclose(
        c.contributions(np.array([[-1.0], [1.0]])), [[-1.5, 0.5], [0.5, 0.5]]
    )


def test_pickle_round_trip_preserves_outputs(compiled: CompiledTrees) -> None:
    x = _rows(200, 5, compiled)
    restored = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(restored.predict_proba(x), compiled.predict_proba(x))
    np.testing.assert_array_equal(restored.contributions(x), compiled.contributions(x))
    p, contrib = one_row(restored, x[0])
    p0, contrib0 = one_row(compiled, x[0])
    assert p == p0
    np.testing.assert_array_equal(contrib, contrib0)
    # Only the defining arrays travel; the fast-path layout is rebuilt on load.
    assert "_slot" not in compiled.__getstate__()


def test_bad_input_shapes_are_refused(compiled: CompiledTrees) -> None:
    with pytest.raises(ValueError, match="expected shape"):
        compiled.predict_proba(np.zeros((3, N_FEATURES + 1)))
    with pytest.raises(ValueError, match="expected shape"):
        compiled.predict_proba(np.zeros(N_FEATURES))


def test_unsupported_objective_is_refused() -> None:
    x, y = _data(200, 1)
    b = xgb.train({"objective": "reg:squarederror", "nthread": 1}, xgb.DMatrix(x, y), 2)
    with pytest.raises(ValueError, match="unsupported objective"):
        compile_booster(b)


def test_a_trained_models_trees_equal_xgboost(tiny_model: TinyModel) -> None:
    """The runtime of a model the stages trained, against its own restored Booster."""
    from fraud.data.synthetic.config import DataConfig
    from fraud.data.synthetic.generate import generate_transactions
    from fraud.features.history import compute_history
    from fraud.features.transform import transform
    from fraud.runtime.artifact import load_artifact

    artifact, _ = load_artifact(tiny_model.manifest)
    booster = artifact.model.booster()
    compiled = artifact.model.trees
    np.testing.assert_array_equal(compile_booster(booster).threshold, compiled.threshold)
    state = artifact.feature_state
    df = generate_transactions(DataConfig(n_transactions=400, n_users=40, days=10), seed=1)
    df = pd.concat([df, compute_history(df, state.config)], axis=1)
    x = transform(df, state)
    x[np.random.default_rng(0).random(x.shape) < 0.05] = np.nan
    proba, contributions = compiled.predict_with_contributions(x)
    assert np.abs(proba - booster.inplace_predict(x)).max() < 1e-6
    expected = booster.predict(xgb.DMatrix(x), pred_contribs=True, approx_contribs=True)
    assert np.abs(contributions - expected).max() < 1e-5
    # Rows sum to the exact leaf sum; XGBoost's float32 margin is ~1e-5 off it (its own are too).
    assert np.abs(contributions.sum(axis=1) - compiled.margin(x)).max() < 5e-5
    p, contrib = one_row(compiled, x[7])
    assert p == proba[7]
    np.testing.assert_array_equal(contrib, contributions[7])
