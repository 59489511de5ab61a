"""Out-of-time splits of a clean transactions table: by row share, or by calendar dates with
the label delay a deployed model lives with.

Both give train < valid < test in time. The date split also returns the rows of the label
delay gap as ``history``: they happen before the test period, so the features of test rows
see them (as serving would), but their labels are not known yet at the test start, so they are
never trained or validated on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraud.config import ConfigError, parse_section
from fraud.data import schema
from fraud.data.validate import _time_ordered

#: The parts ``split_transactions`` returns, in time order of their rows.
PARTS = ("train", "valid", "history", "test")


@dataclass
class SplitConfig:
    """Shares of rows (by time) for the train, valid and test splits; they must sum to 1."""

    train: float = 0.7
    valid: float = 0.15
    test: float = 0.15
    name: str = "time"

    def check(self) -> None:
        """Raise ValueError naming the field for a share out of range or a sum other than 1."""
        for name in ("train", "valid", "test"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"split.{name} must be in (0, 1), got {value}")
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"split.train + split.valid + split.test must be 1, got {total}")

    def split(self, df: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """``PARTS`` of a clean table (``share_split``)."""
        return share_split(df, self)


@dataclass
class DateSplitConfig:
    """The ``split`` section of ``split=dates`` (conf/split/dates.yaml).

    test = [test_start, test_end). Labels arrive ``label_delay_days`` after a transaction, so
    at test_start only transactions before ``cutoff = test_start - label_delay_days`` are
    labelled: valid = [cutoff - valid_days, cutoff), train = everything before valid, and
    [cutoff, test_start) is history only. Rows from test_end on are not used.
    """

    name: str
    test_start: str
    test_end: str
    label_delay_days: int
    valid_days: int

    def dates(self) -> tuple[date, date, date, date]:
        """(valid start, label cutoff, test start, test end), checked."""
        parsed = []
        for key in ("test_start", "test_end"):
            try:
                parsed.append(date.fromisoformat(str(getattr(self, key))))
            except ValueError:
                raise ValueError(
                    f"split.{key} must be an ISO date like 2018-08-08, got {getattr(self, key)!r}"
                ) from None
        test_start, test_end = parsed
        if test_end <= test_start:
            raise ValueError(f"split.test_end {test_end} must be after split.test_start")
        if self.label_delay_days < 0:
            raise ValueError(f"split.label_delay_days must be >= 0, got {self.label_delay_days}")
        if self.valid_days < 1:
            raise ValueError(f"split.valid_days must be >= 1, got {self.valid_days}")
        cutoff = test_start - timedelta(days=self.label_delay_days)
        return cutoff - timedelta(days=self.valid_days), cutoff, test_start, test_end

    def check(self) -> None:
        """Raise ValueError naming the key of a bad date or span."""
        self.dates()

    def split(self, df: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """``PARTS`` of a clean table (``date_split``)."""
        return date_split(df, self)


#: ``split.name`` -> its schema: the one place the kind of split is chosen.
_SPLITS: dict[str, type] = {"time": SplitConfig, "dates": DateSplitConfig}


def parse_split_config(section: Mapping[str, Any] | None) -> SplitConfig | DateSplitConfig:
    """The ``split`` section validated against the schema its ``name`` picks."""
    name = section.get("name") if isinstance(section, Mapping) else None
    if name not in _SPLITS:
        raise ConfigError(f"invalid config 'split.name': {name!r} is not one of {sorted(_SPLITS)}")
    cfg = parse_section(section, _SPLITS[name], "split")
    try:
        cfg.check()
    except ValueError as exc:
        raise ConfigError(f"invalid config 'split': {exc}") from None
    return cfg


def time_split(
    df: pd.DataFrame, cfg: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split by time so every train row is strictly earlier than every valid and test row.

    Cut points are the timestamps at the configured row shares; rows sharing a cut timestamp
    go to the later split, so no timestamp straddles two splits.

    Raises:
        ValueError: if a split would be empty or hold a single class.
    """
    cfg.check()
    ordered = _time_ordered(df)
    ts = ordered[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    n = len(ordered)
    cut1 = ts[min(int(n * cfg.train), n - 1)]
    cut2 = ts[min(int(n * (cfg.train + cfg.valid)), n - 1)]
    parts = (
        ordered[ts < cut1],
        ordered[(ts >= cut1) & (ts < cut2)],
        ordered[ts >= cut2],
    )
    for name, part in zip(("train", "valid", "test"), parts, strict=True):
        if part.empty:
            raise ValueError(f"split '{name}' is empty: {n} rows are too few for the shares")
        if part[schema.LABEL].nunique() < 2:
            raise ValueError(f"split '{name}' has a single class; more rows or fraud are needed")
    return tuple(p.reset_index(drop=True) for p in parts)  # type: ignore[return-value]


def date_split(df: pd.DataFrame, cfg: DateSplitConfig) -> dict[str, pd.DataFrame]:
    """``PARTS`` of ``df`` by the configured dates (UTC midnights); see ``DateSplitConfig``.

    Raises:
        ValueError: if train, valid or test is empty or holds a single class.
    """
    valid_start, cutoff, test_start, test_end = (
        np.datetime64(day.isoformat(), "ns") for day in cfg.dates()
    )
    ordered = _time_ordered(df)
    ts = ordered[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    parts = {
        "train": ordered[ts < valid_start],
        "valid": ordered[(ts >= valid_start) & (ts < cutoff)],
        "history": ordered[(ts >= cutoff) & (ts < test_start)],
        "test": ordered[(ts >= test_start) & (ts < test_end)],
    }
    first, last = ts[0].astype("datetime64[s]"), ts[-1].astype("datetime64[s]")
    empty = [name for name in ("train", "valid", "test") if parts[name].empty]
    if empty:
        raise ValueError(
            f"split {', '.join(repr(name) for name in empty)} empty: the data runs from "
            f"{first} to {last}; check split.test_start, split.test_end, "
            "split.label_delay_days and split.valid_days"
        )
    for name in ("train", "valid", "test"):
        if parts[name][schema.LABEL].nunique() < 2:
            raise ValueError(f"split '{name}' has a single class; widen its dates")
    return {name: part.reset_index(drop=True) for name, part in parts.items()}


def share_split(df: pd.DataFrame, cfg: SplitConfig) -> dict[str, pd.DataFrame]:
    """``PARTS`` of ``time_split``: its history part is empty."""
    train, valid, test = time_split(df, cfg)
    return {"train": train, "valid": valid, "history": test.iloc[:0], "test": test}
