"""Fast numpy evaluation of an XGBoost tree ensemble: probability plus per-feature reasons.

Scoring one transaction must take well under a millisecond, but ``Booster.inplace_predict``
costs several hundred microseconds of fixed overhead per call and exact SHAP
(``pred_contribs=True``) several milliseconds per row. ``fraud.model.compile`` turns a
logistic gbtree booster into these arrays once, at training time; ``CompiledTrees`` then walks
all trees at once, one gather per depth level (vectorised over trees, and over trees × rows
for batches), and returns the probability with Saabas contributions (XGBoost's
``approx_contribs``) as "reasons".

Exactness. XGBoost goes left when ``float32(x[f]) < threshold`` (float32), else right, and a
missing value (NaN) follows the node's default direction. Here the row is laid out in float32
as ``xx = [x, -x]`` and every split is one test ``xx[slot] >= key`` choosing child 0 or 1:

* default-left node: slot ``f``, key ``threshold``, child 0 = left: true iff
  ``x >= threshold`` (go right); NaN compares false, so it goes left;
* default-right node: slot ``n_features + f``, key ``-nextafter(threshold, -inf)``, child 0 =
  right: true iff ``x < threshold`` (go left); NaN compares false, so it goes right.

Margins are summed in float32 tree by tree from the base margin, as XGBoost does, so
``margin`` is bit-identical to ``inplace_predict(..., predict_type="margin")`` and
probabilities agree to float32 rounding (~1e-7).

Contributions (Saabas): along each tree's path, the change in the node's expected value
(cover-weighted mean of the leaves below, from the JSON ``sum_hessian``) is credited to the
split feature; the roots' expected values plus the base margin form the bias (last column).
They are float64 and sum to the exact sum of the leaf values, which differs from the float32
``margin`` by float32 rounding (~1e-5 for ~400 trees), as XGBoost's own do.

Layout. Each tree is padded to a complete binary tree of depth ``max_depth`` (a leaf above
the last level is repeated in both child positions, with zero contribution), stored level by
level: the node at position ``p`` of level ``l`` has children ``2p`` and ``2p + 1`` at level
``l + 1``, with tree ``t``'s nodes at positions ``t * 2**l`` to ``(t + 1) * 2**l - 1``. One
step is ``p = 2 * p + (xx[slot_l[p]] >= key_l[p])``: three gathers, no child pointers.
The padding costs ``n_trees * 2**(max_depth + 1)`` positions, hence ``MAX_POSITIONS``.

The same walk runs in C when ``fraud.runtime.native`` can build and load its kernel
(``_treewalk.c``: ~4 ms against ~19 ms per 1,000 rows with contributions, one row in a few
microseconds), over the same arrays with the same operations in the same order, so the
numbers are bit for bit those of the numpy code below, which is the fallback (tested).

A ``CompiledTrees`` is immutable and keeps no per-call state: share it between threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from fraud.runtime import native

__all__ = ["CompiledTrees"]

#: Rows per chunk in the batch path: keeps the (trees × rows) work arrays in cache.
BATCH_CHUNK = 64
#: Most leaf positions (``n_trees * 2**max_depth``) the complete layout may take.
MAX_POSITIONS = 1 << 22


def _sigmoid(margin: np.ndarray) -> np.ndarray:
    """Logistic function in float64 (the same ufuncs for one row and for batches)."""
    with np.errstate(over="ignore"):  # exp(-margin) = inf for margin < -709: probability 0
        return 1.0 / (1.0 + np.exp(-margin))


def _float32_sum(values: np.ndarray) -> np.ndarray:
    """Column sums of a float32 (n_trees, m) array, added tree by tree in float32 like XGBoost.

    For m >= 2 numpy reduces over the (non-contiguous) first axis sequentially, row after
    row, ~6x faster than ``accumulate``; a single column would be summed pairwise instead.
    """
    if values.shape[1] == 1:
        return np.add.accumulate(values, axis=0)[-1]
    return np.add.reduce(values, axis=0)


@dataclass(frozen=True, eq=False)
class CompiledTrees:
    """A tree ensemble as node arrays over all trees, plus the derived level-by-level layout.

    Node arrays are indexed by a global node id; ``left``/``right`` are global ids, -1 at
    leaves. ``leaf_value`` is 0 at internal nodes; ``cover`` is the node's hessian sum (used for
    contributions). ``base_margin`` is the margin-space base score. Pickles hold only these
    fields; the fast-path arrays are rebuilt on load.
    """

    feature: np.ndarray  # intp (n_nodes,): split feature, 0 at leaves
    threshold: np.ndarray  # float32 (n_nodes,): go left iff float32(x) < threshold
    left: np.ndarray  # intp (n_nodes,)
    right: np.ndarray  # intp (n_nodes,)
    default_left: np.ndarray  # bool (n_nodes,): where a missing value goes
    leaf_value: np.ndarray  # float32 (n_nodes,)
    cover: np.ndarray  # float32 (n_nodes,)
    roots: np.ndarray  # intp (n_trees,)
    base_margin: float
    n_features: int
    max_depth: int
    # Derived in __post_init__ (see the module docstring), one entry per level.
    _slot: tuple[np.ndarray, ...] = field(init=False, repr=False)
    _key: tuple[np.ndarray, ...] = field(init=False, repr=False)
    _delta: tuple[np.ndarray, ...] = field(init=False, repr=False)
    _value: np.ndarray = field(init=False, repr=False)
    _first_step: np.ndarray = field(init=False, repr=False)
    _bias: float = field(init=False, repr=False)
    # The native kernel's arguments: the levels concatenated (see _treewalk.c).
    _native: tuple[Any, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n_nodes, n_trees, n_features = len(self.feature), len(self.roots), self.n_features
        for name in ("threshold", "left", "right", "default_left", "leaf_value", "cover"):
            if len(getattr(self, name)) != n_nodes:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, not {n_nodes}")
        if n_trees == 0:
            raise ValueError("the ensemble has no trees")
        internal = self.left >= 0
        if not np.array_equal(internal, self.right >= 0):
            raise ValueError("a node has exactly one child")
        for name in ("left", "right", "roots"):
            ids = getattr(self, name)
            if ids.size and ids.max() >= n_nodes:
                raise ValueError(f"{name} refers to a node beyond {n_nodes - 1}")
        split = self.feature[internal]
        if split.size and (split.min() < 0 or split.max() >= n_features):
            raise ValueError(f"split feature outside 0-{n_features - 1}")
        if n_trees << self.max_depth > MAX_POSITIONS:
            raise ValueError(
                f"{n_trees} trees of depth {self.max_depth} need more than {MAX_POSITIONS} "
                "leaf positions; the complete layout suits shallow (depthwise) trees only"
            )
        mean = _node_means(self.left, self.right, self.leaf_value, self.cover, self.roots)
        mean64 = mean.astype(np.float64)
        slot = np.where(self.default_left, self.feature, self.feature + n_features)
        key = _split_keys(self.threshold, self.default_left)
        first = np.where(self.default_left, self.left, self.right)
        second = np.where(self.default_left, self.right, self.left)

        slots, keys, deltas = [], [], []
        node = self.roots
        for level in range(self.max_depth):
            split_here = internal[node]
            slots.append(np.where(split_here, slot[node], 0).astype(np.intp))
            keys.append(np.where(split_here, key[node], np.float32(0)).astype(np.float32))
            # A leaf above the last level repeats in both child positions.
            child = np.stack(
                (
                    np.where(split_here, first[node], node),
                    np.where(split_here, second[node], node),
                ),
                axis=1,
            ).ravel()
            moved = np.repeat(split_here, 2)
            # Saabas: stepping into a node credits its expected value minus its parent's to
            # the parent's split feature.
            deltas.append(np.where(moved, mean64[child] - np.repeat(mean64[node], 2), 0.0))
            if level == self.max_depth - 1 and not split_here.any():
                raise ValueError(f"the trees are shallower than max_depth {self.max_depth}")
            node = child
        if internal[node].any():
            raise ValueError(f"the trees are deeper than max_depth {self.max_depth}")
        # XGBoost sums margins in float32 tree by tree from the base margin; folding the base
        # into tree 0's leaves lets a float32 cumulative sum reproduce that bit for bit.
        value = self.leaf_value[node].astype(np.float32)
        tree0 = slice(0, 1 << self.max_depth)
        value[tree0] = np.float32(self.base_margin) + value[tree0]

        derived: dict[str, Any] = {
            "_slot": tuple(slots),
            "_key": tuple(keys),
            "_delta": tuple(deltas),
            "_value": value,
            "_first_step": 2 * np.arange(n_trees, dtype=np.intp),
        }
        for name, arrays in derived.items():
            for array in arrays if isinstance(arrays, tuple) else (arrays,):
                array.setflags(write=False)
            object.__setattr__(self, name, arrays)
        bias = self.base_margin + float(mean64[self.roots].sum())
        object.__setattr__(self, "_bias", bias)
        level_starts = [n_trees * ((1 << level) - 1) for level in range(self.max_depth + 1)]
        flat = (
            np.concatenate(slots, dtype=np.int32) if slots else np.zeros(0, np.int32),
            np.concatenate(keys, dtype=np.float32) if keys else np.zeros(0, np.float32),
            # the root level has no delta: level l's deltas start where level l + 1 does
            np.concatenate([np.zeros(n_trees), *deltas]),
            np.ascontiguousarray(value),
            np.asarray(level_starts, dtype=np.int64),
        )
        for array in flat:
            array.setflags(write=False)
        # the arrays (kept alive) and their addresses, in treewalk's argument order
        object.__setattr__(self, "_native", (flat, *(a.ctypes.data for a in flat)))

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the defining fields only; the fast-path arrays are rebuilt on load."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return len(self.roots)

    def _check(self, x: np.ndarray) -> np.ndarray:
        """``x`` as a float64 (n, n_features) array, or ValueError."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected shape (n, {self.n_features}), got {x.shape}")
        return x

    def _evaluate(
        self, x: np.ndarray, with_contributions: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Margins (n,) and optionally contributions (n, n_features + 1) of a checked ``x``.

        Rows go in chunks of ``BATCH_CHUNK``; per chunk every level is a handful of numpy
        operations over (trees × rows) arrays. Contributions are one ``bincount`` per chunk
        over (tree, level, row) entries: each row accumulates tree by tree, level by level
        within a tree, the order of the C kernel (float sums depend on
        their order, and the paths must agree bit for bit).
        """
        lib = native.kernel()
        if lib is not None:
            return self._evaluate_native(lib, x, with_contributions)
        n, n_trees, depth = len(x), self.n_trees, self.max_depth
        n_features, width = self.n_features, 2 * self.n_features
        margins = np.empty(n, dtype=np.float64)
        contributions = np.empty((n, n_features + 1)) if with_contributions else None
        for start in range(0, n, BATCH_CHUNK):
            with np.errstate(over="ignore"):  # beyond float32 range: inf, as in XGBoost
                chunk = x[start : start + BATCH_CHUNK].astype(np.float32)
            m = len(chunk)
            xx = np.concatenate((chunk, -chunk), axis=1).ravel()
            offset = np.arange(m, dtype=np.intp) * width
            # (tree, level, row): each level fills a strided view; bincount reads tree-major
            index = np.empty((n_trees, depth if with_contributions else min(depth, 1), m), np.intp)
            steps = np.empty((n_trees, depth, m)) if with_contributions else None
            go = np.empty((n_trees, m), dtype=np.intp)
            pos = np.broadcast_to(np.arange(n_trees, dtype=np.intp)[:, None], (n_trees, m))
            for level in range(depth):
                here = index[:, level if with_contributions else 0]
                if level == 0:
                    np.add(self._slot[0][:, None], offset, out=here)
                    np.greater_equal(xx.take(here), self._key[0][:, None], out=go)
                    pos = self._first_step[:, None] + go
                else:
                    self._slot[level].take(pos, out=here, mode="wrap")
                    here += offset
                    np.greater_equal(xx.take(here), self._key[level].take(pos), out=go)
                    pos <<= 1
                    pos += go
                if steps is not None:
                    self._delta[level].take(pos, out=steps[:, level], mode="wrap")
            margins[start : start + m] = _float32_sum(self._value.take(pos))
            if contributions is not None and steps is not None:
                sums = np.bincount(index.ravel(), weights=steps.ravel(), minlength=m * width)
                sums = sums.reshape(m, width)
                part = contributions[start : start + m]
                np.add(sums[:, :n_features], sums[:, n_features:], out=part[:, :n_features])
                part[:, n_features] = self._bias
        return margins, contributions

    def _evaluate_native(
        self, lib: Any, x: np.ndarray, with_contributions: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``_evaluate`` by the C kernel: the same walk and sums, bit for bit."""
        n, n_features = len(x), self.n_features
        xx = np.empty((n, 2 * n_features), dtype=np.float32)  # C order, whatever x's layout
        with np.errstate(over="ignore"):  # beyond float32 range: inf, as in XGBoost
            xx[:, :n_features] = x
        np.negative(xx[:, :n_features], out=xx[:, n_features:])
        margins = np.empty(n)
        work = np.zeros((n, 2 * n_features)) if with_contributions else None
        _, slot, key, delta, value, starts = self._native
        lib.treewalk(
            xx.ctypes.data,
            n,
            2 * n_features,
            slot,
            key,
            delta,
            value,
            starts,
            self.n_trees,
            self.max_depth,
            margins.ctypes.data,
            None if work is None else work.ctypes.data,
        )
        if work is None:
            return margins, None
        contributions = np.empty((n, n_features + 1))
        np.add(work[:, :n_features], work[:, n_features:], out=contributions[:, :n_features])
        contributions[:, n_features] = self._bias
        return margins, contributions

    def margin(self, x: np.ndarray) -> np.ndarray:
        """Margin (log-odds) per row of ``x`` (n, n_features), NaN = missing; float64 (n,).

        Bit-identical to ``inplace_predict(x, predict_type="margin")``: a float32 sum.
        """
        return self._evaluate(self._check(x), with_contributions=False)[0]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability per row, float64 (n,); ``inplace_predict`` to within float32 rounding."""
        return _sigmoid(self.margin(x))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Saabas contributions (n, n_features + 1), last column the bias; rows sum to margin.

        XGBoost's ``predict(DMatrix(x), pred_contribs=True, approx_contribs=True)`` to within
        float32 rounding. Computed in float64, a row sums to the exact sum of its leaf values,
        which differs from ``margin`` (XGBoost's float32 sum) by float32 rounding (~1e-5).
        """
        return self.predict_with_contributions(x)[1]

    def predict_with_contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n,) and contributions (n, n_features + 1) from one walk of the trees."""
        margins, contributions = self._evaluate(self._check(x), with_contributions=True)
        if contributions is None:  # with_contributions=True always fills them
            raise RuntimeError("contributions were not computed")
        return _sigmoid(margins), contributions


def _node_means(
    left: np.ndarray, right: np.ndarray, value: np.ndarray, cover: np.ndarray, roots: np.ndarray
) -> np.ndarray:
    """Cover-weighted mean leaf value under each node (a leaf's own value), float32.

    XGBoost's ``FillNodeMeanValue`` order and precision: (left mean × left cover + right mean
    × right cover) / own cover, in float32, children before parents.
    """
    order: list[np.ndarray] = []  # internal nodes, level by level from the roots
    frontier = np.asarray(roots, dtype=np.intp)
    while frontier.size:
        frontier = frontier[left[frontier] >= 0]
        order.append(frontier)
        frontier = np.concatenate((left[frontier], right[frontier]))
        if len(order) > len(left):
            raise ValueError("the trees contain a cycle")
    mean = np.where(left >= 0, np.float32(0), value).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for nodes in reversed(order):
            total = mean[left[nodes]] * cover[left[nodes]]
            total += mean[right[nodes]] * cover[right[nodes]]
            mean[nodes] = total / cover[nodes]
    return mean


def _split_keys(threshold: np.ndarray, default_left: np.ndarray) -> np.ndarray:
    """Keys for the ``[x, -x][slot] >= key`` test (see the module docstring), float32.

    For default-right nodes ``x < t`` becomes ``-x >= -nextafter(t, -inf)``, exact in float32;
    for ``t = -inf`` nothing goes left, which a NaN key expresses.
    """
    t = np.asarray(threshold, dtype=np.float32)
    below = np.nextafter(t, np.float32(-np.inf))
    flipped = np.where(np.isneginf(t), np.float32(np.nan), -below).astype(np.float32)
    return np.where(default_left, t, flipped).astype(np.float32)
