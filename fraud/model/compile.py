"""Compile a trained XGBoost booster into the serving runtime (training side: reads its JSON).

Reads the model JSON (``save_raw("json")``), which prints split conditions, leaf values and
hessian sums as exact float32 values, and checks the result against the booster's own margins.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud.runtime.trees import CompiledTrees
from fraud.runtime.xgboost_model import XGBoostModel

if TYPE_CHECKING:
    import xgboost

#: Objectives whose prediction is ``sigmoid(margin)`` with a probability-valued base_score.
LOGISTIC_OBJECTIVES = ("binary:logistic", "reg:logistic")


def xgboost_model(booster: xgboost.Booster) -> XGBoostModel:
    """The runtime of ``booster``: its UBJSON bytes and its trees compiled (and checked)."""
    return XGBoostModel(bytes(booster.save_raw("ubj")), compile_booster(booster))


def _parse_base_score(text: str) -> float:
    """XGBoost 3 stores base_score as a vector string such as ``'[1.4691428E-2]'``."""
    values = [float(v) for v in str(text).strip("[] ").replace(",", " ").split()]
    if len(values) != 1:
        raise ValueError(f"expected one base_score, got {text!r}")
    return values[0]


def compile_booster(booster: xgboost.Booster) -> CompiledTrees:
    """Compile a single-output logistic gbtree booster with numerical splits.

    Reads the model JSON (``save_raw("json")``), which prints split conditions, leaf values
    and hessian sums as exact float32 values. Uses all trees (no iteration range).
    """
    model = json.loads(bytes(booster.save_raw("json")))
    learner = model["learner"]
    objective = learner["objective"]["name"]
    if objective not in LOGISTIC_OBJECTIVES:
        raise ValueError(f"unsupported objective {objective!r}; expected {LOGISTIC_OBJECTIVES}")
    param = learner["learner_model_param"]
    if int(param.get("num_class", 0)) > 1 or int(param.get("num_target", 1)) != 1:
        raise ValueError("only single-output models are supported")
    gbm = learner["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise ValueError(f"unsupported booster {gbm['name']!r}; expected 'gbtree'")
    compiled = _compile_trees(
        gbm["model"]["trees"], _base_margin(param["base_score"]), int(param["num_feature"])
    )
    _check_against(compiled, booster)
    return compiled


def _base_margin(base_score_text: str) -> float:
    """The margin XGBoost starts from: ``-logf(1 / base_score - 1)`` in float32 arithmetic.

    A logistic model stores base_score as a probability. XGBoost converts it in float32
    (``ProbToMargin``); the float32 ``1 / p - 1`` loses digits, so the exact logit can be
    several float32 steps away, while this reproduces XGBoost's margins bit for bit (its
    ``logf`` is within an ulp of the correctly rounded log used here).
    """
    p = np.float32(_parse_base_score(base_score_text))
    if not 0.0 < p < 1.0:
        raise ValueError(f"base_score {p} is not a probability")
    odds = np.float32(np.float32(1.0) / p) - np.float32(1.0)
    return float(-np.float32(np.log(np.float64(odds))))


def _check_against(compiled: CompiledTrees, booster: xgboost.Booster) -> None:
    """Guard against a misread model: margins of probe rows must match XGBoost's own."""
    probe = np.vstack([np.full(compiled.n_features, np.nan), np.zeros(compiled.n_features)])
    expected = np.asarray(booster.inplace_predict(probe, predict_type="margin"), np.float64)
    got = compiled.margin(probe)
    if not np.allclose(got, expected.reshape(got.shape), rtol=0, atol=1e-4):
        raise ValueError(f"compiled margins {got} differ from XGBoost's {expected}")


def _compile_trees(
    trees: list[dict[str, Any]], base_margin: float, n_features: int
) -> CompiledTrees:
    """Concatenate the JSON trees' node arrays, node ids offset per tree."""
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("feature", "threshold", "left", "right", "default_left", "value", "cover")
    }
    roots, max_depth, offset = [], 0, 0
    for tree in trees:
        if any(int(kind) != 0 for kind in tree["split_type"]):
            raise ValueError("categorical splits are not supported")
        if int(tree["tree_param"].get("size_leaf_vector", 1)) > 1:
            raise ValueError("vector leaves are not supported")
        left = np.asarray(tree["left_children"], dtype=np.intp)
        right = np.asarray(tree["right_children"], dtype=np.intp)
        leaf = left < 0
        cond = np.asarray(tree["split_conditions"], dtype=np.float32)
        parts["feature"].append(np.where(leaf, 0, np.asarray(tree["split_indices"], np.intp)))
        parts["threshold"].append(np.where(leaf, np.float32(0), cond))
        parts["left"].append(np.where(leaf, -1, left + offset))
        parts["right"].append(np.where(leaf, -1, right + offset))
        parts["default_left"].append(np.asarray(tree["default_left"], dtype=bool) & ~leaf)
        parts["value"].append(np.where(leaf, cond, np.float32(0)))
        parts["cover"].append(np.asarray(tree["sum_hessian"], dtype=np.float32))
        roots.append(offset)
        max_depth = max(max_depth, _depth(left, right))
        offset += len(left)
    if not roots:
        raise ValueError("the booster has no trees")
    return CompiledTrees(
        feature=np.concatenate(parts["feature"]).astype(np.intp),
        threshold=np.concatenate(parts["threshold"]).astype(np.float32),
        left=np.concatenate(parts["left"]).astype(np.intp),
        right=np.concatenate(parts["right"]).astype(np.intp),
        default_left=np.concatenate(parts["default_left"]),
        leaf_value=np.concatenate(parts["value"]).astype(np.float32),
        cover=np.concatenate(parts["cover"]).astype(np.float32),
        roots=np.asarray(roots, dtype=np.intp),
        base_margin=base_margin,
        n_features=n_features,
        max_depth=max_depth,
    )


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Depth (edges on the longest root-to-leaf path) of one tree rooted at node 0."""
    depth, frontier = 0, np.zeros(1, dtype=np.intp)
    while True:
        frontier = frontier[left[frontier] >= 0]
        if not frontier.size:
            return depth
        depth += 1
        if depth > len(left):
            raise ValueError("the tree contains a cycle")
        frontier = np.concatenate((left[frontier], right[frontier]))
