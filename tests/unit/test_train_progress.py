"""Training reports its progress on a terminal, and only there; the model is the same."""

from __future__ import annotations

import io

import numpy as np
import xgboost as xgb

from fraud.model.train import _progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def train(callbacks: list) -> bytes:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = (x[:, 0] + rng.normal(size=400) > 1).astype(float)
    dtrain, dvalid = xgb.DMatrix(x[:300], label=y[:300]), xgb.DMatrix(x[300:], label=y[300:])
    booster = xgb.train(
        {"objective": "binary:logistic", "eval_metric": "aucpr", "seed": 1, "nthread": 1},
        dtrain,
        num_boost_round=20,
        evals=[(dvalid, "valid")],
        verbose_eval=False,
        callbacks=callbacks,
    )
    return bytes(booster.save_raw("ubj"))


def test_progress_on_a_terminal_only_and_the_same_model() -> None:
    terminal = Terminal()
    with_progress = train(_progress(xgb, 20, terminal, every_s=0.0))
    lines = terminal.getvalue().splitlines()
    assert len(lines) == 20
    assert lines[-1].startswith("train: round 20/20, valid pr_auc ")
    assert _progress(xgb, 20, io.StringIO()) == []  # a log file or CI: quiet
    assert with_progress == train([])
