"""Drift scenarios applied to a synthetic "production" batch, and that batch's generator config."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from fraud.data import schema
from fraud.monitoring.config import ScenarioConfig

if TYPE_CHECKING:
    import pandas as pd

    from fraud.data.synthetic.config import DataConfig


def production_config(data: DataConfig, rows: int) -> DataConfig:
    """Generator config of a "production" batch of ``rows`` rows after the training period.

    Same span and per-user activity as training (users scaled with rows), starting the day
    after the training data ends, so history features and scores look like serving's.
    """
    from fraud.data.synthetic.config import start_date

    users = max(1, round(data.n_users * rows / data.n_transactions))
    start = start_date(data.start) + timedelta(days=data.days)
    return replace(
        data,
        source="synthetic",
        path=None,
        n_transactions=rows,
        n_users=users,
        start=start.isoformat(),
    )


def apply_scenario(
    frame: pd.DataFrame, scenario: ScenarioConfig, rng: np.random.Generator
) -> pd.DataFrame:
    """A copy of a generated batch with ``scenario``'s drift applied.

    Amounts are multiplied (in cents, at least 0.01); a ``night_share`` of rows moves to a
    random night hour of the same day (timestamp and hour_of_day together); an
    ``online_share`` of rows becomes online transactions (card-present "pos" devices become
    "mobile"); a ``new_category_share`` of rows gets a merchant category training never saw.
    """
    import pandas as pd

    scenario.check()
    out = frame.copy()
    n = len(out)
    amount = np.round(
        out[schema.AMOUNT].to_numpy(dtype=np.float64) * scenario.amount_multiplier, 2
    )
    out[schema.AMOUNT] = np.maximum(amount, 0.01)

    night = rng.random(n) < scenario.night_share
    hours = np.asarray(scenario.night_hours, dtype=np.int64)[
        rng.integers(0, len(scenario.night_hours), n)
    ]
    old = out[schema.HOUR].to_numpy(dtype=np.int64)
    new = np.where(night, hours, old)
    out[schema.HOUR] = new
    if schema.TIMESTAMP in out:
        out[schema.TIMESTAMP] = out[schema.TIMESTAMP] + pd.to_timedelta((new - old) * 3600, "s")

    online = rng.random(n) < scenario.online_share
    out.loc[online, "transaction_type"] = "online"
    out.loc[online & (out["device_type"] == "pos").to_numpy(), "device_type"] = "mobile"

    novel = rng.random(n) < scenario.new_category_share
    out.loc[novel, "merchant_category"] = scenario.new_category
    if schema.TIMESTAMP in out:
        out = out.sort_values(schema.TIMESTAMP, kind="stable", ignore_index=True)
    return out
