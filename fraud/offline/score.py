"""Score a table of raw transactions with a model, offline: every row, in the table's order.

The table's columns are mapped onto the canonical names (``data.columns``, as the pipeline
maps a user's own file) and the ones the model reads are checked and cleaned by the
pipeline's own validation (``fraud.data.validate.clean_columns``: each bad column named with
its row count and the file). Each row's history is computed from the table itself, point in
time, by the batch code training uses (``fraud.features.history``): only the transactions of
the same card, merchant or device strictly before it, and for the label-delayed risk
features only labels older than the delay - from the table's ``is_fraud`` when it has one,
none otherwise (every row unlabelled, as training treats unlabelled rows). So a row scored
here gets the score the pipeline's evaluate gives it and the service gives it with the same
history.

Rows are scored in chunks on two threads by the service's ``Scorer.score_matrix`` (the
compiled trees' C kernel releases the GIL): probability, decision at the model's threshold,
risk level by the service's bands and the top reasons, one column each
(``output_columns``) appended to the input's own columns.

Three steps, public so a caller can report progress between them: ``check_table``,
``feature_inputs`` (the history), ``score_checked``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from fraud.data import schema
from fraud.data.external import map_columns
from fraud.data.validate import clean_columns
from fraud.features.history import history_arrays
from fraud.features.state import FeatureState
from fraud.features.transform import transform
from fraud.offline.tables import frame
from fraud.runtime.artifact import ArtifactError, load_artifact
from fraud.runtime.scoring import RISK_LEVELS, RiskBands, Scorer, ServingConfig

PROBABILITY = "fraud_probability"
DECISION = "decision"
RISK_LEVEL = "risk_level"
#: ``decision``'s values: below the model's threshold, and at or above it.
DECISIONS: tuple[str, str] = ("legit", "fraud")
#: Rows a worker scores at a time: the chunk's feature, contribution and kernel work arrays
#: (~16 MB) stay small while the per-chunk Python overhead stays far below the kernel's time.
CHUNK_ROWS = 16_384
#: Scoring threads: the kernel and numpy release the GIL, so two use both cores of a small
#: machine (the history is computed on two threads too).
THREADS = 2

#: Called with (rows scored so far, rows in all) as chunks finish.
Progress = Callable[[int, int], None]


def load_scorer(manifest: Path) -> Scorer:
    """The service's scorer of a promoted model: the artifact its manifest names, verified
    (``load_artifact``: hash, format, library versions) and the risk bands and number of
    reasons the manifest's ``serving`` section ships (conf/serving/), as a worker boots.

    Raises:
        ArtifactError: naming the file: a missing, tampered or incompatible artifact, or a
            manifest without a valid ``serving`` section (a candidate not yet promoted).
    """
    artifact, facts = load_artifact(manifest)
    serving = facts.get("serving")
    names = [f.name for f in fields(ServingConfig)]
    if not isinstance(serving, Mapping) or any(name not in serving for name in names):
        raise ArtifactError(
            f"manifest {manifest} has no serving section with {', '.join(names)} (score a "
            "promoted model: the promote stage writes it from conf/serving/)"
        )
    try:
        cfg = ServingConfig(**{name: serving[name] for name in names})
        cfg.check()
        return Scorer(artifact, facts, RiskBands(cfg.risk_medium, cfg.risk_high), cfg.top_reasons)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"manifest {manifest}: serving: {exc}") from None


def reason_columns(top_k: int) -> list[str]:
    """The reason columns for ``top_k`` reasons: name, value and contribution of each."""
    parts = ("", "_value", "_contribution")
    return [f"reason_{j}{part}" for j in range(1, top_k + 1) for part in parts]


def output_columns(top_k: int) -> list[str]:
    """The columns scoring appends to a table, in order."""
    return [PROBABILITY, DECISION, RISK_LEVEL, *reason_columns(top_k)]


def required_columns(state: FeatureState) -> list[str]:
    """The canonical columns a table must have to be scored with ``state``'s model: the id the
    output is keyed by, the time and amount, the card when history is used, and the model's
    own inputs (its categorical fields and the merchant / device ids it was trained with)."""
    core = [schema.TRANSACTION_ID, schema.TIMESTAMP, schema.AMOUNT]
    if state.history_columns:
        core.insert(1, schema.USER_ID)
    return [*core, *(c for c in state.inputs if c not in core)]


def reads_labels(state: FeatureState) -> bool:
    """Whether the model has label-delayed risk features (which read ``is_fraud``)."""
    if not state.config.use_history:
        return False
    return any(entity.risk_windows for _, entity in state.config.entities_of(state.inputs))


@dataclass
class Scored:
    """A scored table and what the caller reports about it."""

    table: pa.Table  # the input's columns, then ``output_columns``
    flagged: int  # rows whose decision is fraud
    risk_counts: dict[str, int]  # rows per risk level
    unseen: dict[str, int] = field(default_factory=dict)  # column -> rows unseen in training
    replaced: list[str] = field(default_factory=list)  # input columns the output replaced
    labelled: bool = False  # the risk features used the table's is_fraud labels

    @property
    def rows(self) -> int:
        """Rows scored."""
        return self.table.num_rows


def check_table(
    table: pa.Table, state: FeatureState, columns: Mapping[str, str], source: str
) -> pd.DataFrame:
    """The columns of ``table`` the model reads, mapped (``columns``: canonical -> the file's
    name) and cleaned, in the table's row order, with hour and day derived from the time.

    Raises:
        SchemaError: every problem at once, each naming ``source``, the column and the rows:
            a missing or unmapped column, unparseable values, duplicated transaction ids.
    """
    raw, _ = map_columns(frame(table), source, columns)
    wanted = required_columns(state)
    if reads_labels(state) and schema.LABEL in raw:
        wanted.append(schema.LABEL)
    present = [c for c in wanted if c in raw]
    return clean_columns(raw[present], source, required=wanted, unique_ids=True)


def feature_inputs(clean: pd.DataFrame, state: FeatureState) -> dict[str, Any]:
    """What ``transform`` reads for every row: the raw fields (numpy arrays; the categorical
    ones as pandas arrays, which factorize fast) and the point-in-time history columns."""
    inputs: dict[str, Any] = {}
    for name in state.record_fields:
        column = clean[name]
        inputs[name] = column.array if name in state.vocabularies else column.to_numpy()
    if state.history_columns:
        inputs |= history_arrays(clean, state.config)
    return inputs


def score_checked(
    table: pa.Table,
    clean: pd.DataFrame,
    inputs: Mapping[str, Any],
    scorer: Scorer,
    progress: Progress | None = None,
) -> Scored:
    """Score the rows of ``table`` from their checked columns ``clean`` and feature inputs
    (``check_table``, ``feature_inputs``), in chunks on ``THREADS`` threads; ``table``'s
    columns, then ``output_columns``."""
    state = scorer.artifact.feature_state
    n, k = len(clean), scorer.top_k
    probability = np.empty(n)
    flagged = np.empty(n, dtype=bool)
    risk = np.empty(n, dtype=np.int8)
    feature = np.empty((k, n), dtype=np.int32)
    value = np.empty((k, n))
    contribution = np.empty((k, n))
    keep = np.empty((k, n), dtype=bool)

    def score(start: int) -> int:
        """Score rows [start, start + CHUNK_ROWS) into the output arrays; the row count."""
        stop = min(start + CHUNK_ROWS, n)
        part = {name: values[start:stop] for name, values in inputs.items()}
        scores = scorer.score_matrix(transform(part, state))
        probability[start:stop] = scores.probability
        flagged[start:stop] = scores.is_fraud
        risk[start:stop] = scores.risk
        reasons = scores.reasons
        feature[:, start:stop] = reasons.feature.T
        value[:, start:stop] = reasons.value.T
        contribution[:, start:stop] = reasons.contribution.T
        keep[:, start:stop] = reasons.keep.T
        return stop - start

    done = 0
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for finished in as_completed([pool.submit(score, s) for s in range(0, n, CHUNK_ROWS)]):
            done += finished.result()
            if progress is not None:
                progress(done, n)

    names = pa.array(scorer.feature_names, type=pa.string())
    scored: dict[str, pa.Array] = {
        PROBABILITY: pa.array(probability),
        DECISION: _labelled(flagged.view(np.int8), DECISIONS),
        RISK_LEVEL: _labelled(risk, RISK_LEVELS),
    }
    for j, (name_col, value_col, contribution_col) in enumerate(
        zip(*[iter(reason_columns(k))] * 3, strict=True)
    ):
        empty = ~keep[j]
        scored[name_col] = pa.DictionaryArray.from_arrays(pa.array(feature[j], mask=empty), names)
        scored[value_col] = pa.array(value[j], mask=empty | ~np.isfinite(value[j]))
        scored[contribution_col] = pa.array(contribution[j], mask=empty)
    replaced = [name for name in table.column_names if name in scored]
    out = table.drop_columns(replaced)
    for name, array in scored.items():
        out = out.append_column(name, array)
    return Scored(
        table=out,
        flagged=int(flagged.sum()),
        risk_counts=dict(zip(RISK_LEVELS, np.bincount(risk, minlength=3).tolist(), strict=True)),
        unseen=_unseen(clean, state),
        replaced=replaced,
        labelled=schema.LABEL in clean,
    )


def _labelled(codes: np.ndarray, labels: tuple[str, ...]) -> pa.DictionaryArray:
    """Codes into ``labels`` as a dictionary column (text in a CSV, a category in Parquet)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(labels, type=pa.string()))


def _unseen(clean: pd.DataFrame, state: FeatureState) -> dict[str, int]:
    """Per categorical input, the rows whose value training never saw (scored as unknown,
    as the service warns per request)."""
    counts = {}
    for name, vocabulary in state.vocabularies.items():
        n = int((~clean[name].isin(vocabulary[1:])).sum())
        if n:
            counts[name] = n
    return counts
