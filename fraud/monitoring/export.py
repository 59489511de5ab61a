"""A training set from production traffic: the audit log joined with feedback labels.

Each transaction counts once, by its latest prediction, labelled by its current feedback label
(``fraud.monitoring.performance.join``, the join realized performance uses). The rule, as card
issuers apply it: fraud is reported within the label delay or never, so a transaction with no
label that was scored more than ``genuine_after_s`` before the newest prediction of the log
counts as genuine; one scored more recently is left out (its label may still come). Rows keep
the raw transaction columns of the pipeline's schema, so the own-data path
(``data.source=parquet``) ingests them and the features are recomputed exactly as for any
other data set: a feature input column (merchant, device, categories) is written only when
every exported row has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fraud.data import schema
from fraud.monitoring.performance import join

#: The raw columns of a training row, label last.
RAW_COLUMNS = schema.CANONICAL_COLUMNS


def rule(genuine_after_s: float | None) -> str:
    """The labelling rule in words, for the export's summary."""
    if genuine_after_s is None:
        return "only transactions labelled by feedback; unlabelled ones are left out"
    return (
        "labelled by feedback where a label arrived (the last by labelled_at wins); no label "
        f"and scored more than {genuine_after_s:g} s before the newest prediction: genuine "
        "(fraud is reported within the label delay); no label and more recent: left out"
    )


def training_rows(
    predictions: Sequence[Mapping[str, Any]],
    labels: Mapping[str, tuple[str, int]],
    genuine_after_s: float | None,
) -> tuple[dict[str, list], dict[str, Any]]:
    """The exported columns (``RAW_COLUMNS`` present in every row, in that order) and a
    summary of what was kept and left out, and why."""
    joined = join(predictions, labels, genuine_after_s)
    required = [c for c in schema.REQUIRED_COLUMNS if c != schema.LABEL]
    complete = np.fromiter(
        (all(r.get(c) not in (None, "") for c in required) for r in joined.records),
        bool,
        len(joined.records),
    )
    keep = joined.labelled & complete
    rows = [r for r, k in zip(joined.records, keep.tolist(), strict=True) if k]
    y = joined.labels[keep]
    optional = [c for c in RAW_COLUMNS if c not in (*required, schema.LABEL)]
    present = [c for c in optional if rows and all(r.get(c) not in (None, "") for r in rows)]
    names = [c for c in RAW_COLUMNS if c in required or c in present]
    columns = {c: [r[c] for r in rows] for c in names}
    columns[schema.LABEL] = y.astype(np.int64).tolist()
    summary = {
        "rule": rule(genuine_after_s),
        "genuine_after_s": genuine_after_s,
        "transactions": len(joined.records),
        "rows": len(rows),
        "frauds": int(y.sum()),
        "labelled_by_feedback": int((keep & ~joined.assumed).sum()),
        "assumed_genuine": int((keep & joined.assumed).sum()),
        "left_out_unlabelled": int((~joined.labelled).sum()),
        "left_out_incomplete": int((joined.labelled & ~complete).sum()),
        "columns": [*names, schema.LABEL],
        "columns_left_out": [c for c in optional if c not in present],
    }
    return columns, summary
