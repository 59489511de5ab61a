"""Stage featurize: point-in-time history over all splits, state fitted on train only.

History is computed on the union of the splits and the history-only rows (valid and test rows
see the earlier history of their users, exactly as serving does); vocabularies and category
fraud rates are fitted on train rows alone and saved as the feature state that travels inside
the model. History-only rows (the label-delay gap of ``split=dates``) get no feature rows.

With ``compute=dask`` the same functions run per entity partition on the cluster
(fraud/cluster/features.py) and each split's features are a partitioned parquet dataset that
also holds ``transaction_id`` (its rows are in no particular order across partitions).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from fraud.cluster.config import ComputeConfig
from fraud.config import load_params, parse_checked
from fraud.data import schema
from fraud.data.split import PARTS
from fraud.features.history import history_arrays
from fraud.features.spec import FeatureConfig
from fraud.features.state import FeatureState, fit_state
from fraud.features.transform import transform_columns
from stages.common import (
    parser,
    read_dataset,
    read_parquet,
    run,
    write_columns,
    write_datasets,
    write_joblib,
    write_json,
)

SPLITS = ("train", "valid", "test")


def featurize(
    splits: dict[str, pd.DataFrame], cfg: FeatureConfig
) -> tuple[FeatureState, dict[str, tuple[list[np.ndarray], np.ndarray]]]:
    """Return the fitted state and, per split, its feature columns and label vector.

    ``splits`` holds ``PARTS`` (fraud.data.split); its ``history`` rows only feed the others'
    history features.
    """
    full = pd.concat([splits[name] for name in PARTS], ignore_index=True)
    history = history_arrays(full, cfg)
    del full
    starts = np.cumsum([0, *(len(splits[name]) for name in PARTS)])  # each part's rows
    state = fit_state(splits["train"], cfg)

    def columns(name: str) -> dict[str, Any]:
        """The split's raw columns and its slice (views) of the history columns."""
        start, stop = starts[PARTS.index(name)], starts[PARTS.index(name) + 1]
        return {**dict(splits[name].items()), **{h: v[start:stop] for h, v in history.items()}}

    return state, {
        name: (
            transform_columns(columns(name), state),
            splits[name][schema.LABEL].to_numpy(dtype="int64"),
        )
        for name in SPLITS
    }


def featurize_on_dask(
    args: Any, cfg: FeatureConfig, compute: ComputeConfig
) -> tuple[FeatureState, int]:
    """Featurize on the configured cluster; write each split's dataset; return the state and
    the number of feature rows."""
    import dask

    from fraud.cluster import features
    from fraud.cluster.engine import cluster

    with cluster(compute):
        parts = {name: read_dataset(getattr(args, f"{name}_in")) for name in PARTS}
        sizes = dask.compute(*[part.shape[0] for part in parts.values()])
        state, frame = features.featurize(parts, cfg, compute.partitions(sum(sizes)))
        write_datasets(
            {
                getattr(args, f"{name}_out"): frame[
                    frame[features.PART] == PARTS.index(name)
                ].drop(columns=features.PART)
                for name in SPLITS
            }
        )
    return state, sum(sizes) - sizes[PARTS.index("history")]


def main(argv: list[str] | None = None) -> int:
    """Write per-split feature tables, the feature state and the selected feature list."""
    paths = {f"{name}_in": f"{name} split parquet" for name in PARTS}
    paths |= {f"{name}_out": f"{name} features parquet" for name in SPLITS}
    paths |= {"state": "fitted feature state (joblib)", "selected": "selected features JSON"}
    args = parser(__doc__.splitlines()[0], paths).parse_args(argv)
    params = load_params(["features", "compute"], args.params)
    cfg = parse_checked(params["features"], FeatureConfig, "features")
    compute = parse_checked(params["compute"], ComputeConfig, "compute")
    if compute.distributed:
        state, rows = featurize_on_dask(args, cfg, compute)
    else:
        splits = {name: read_parquet(getattr(args, f"{name}_in")) for name in PARTS}
        state, matrices = featurize(splits, cfg)
        with ThreadPoolExecutor(max_workers=2) as pool:  # parquet encoding releases the GIL
            writes = [
                pool.submit(write_columns, x, state.feature_names, {schema.LABEL: y}, path)
                for path, (x, y) in ((getattr(args, f"{n}_out"), m) for n, m in matrices.items())
            ]
            for write in writes:
                write.result()
        rows = sum(len(y) for _, y in matrices.values())
    write_joblib(state, args.state)
    write_json(
        {
            "features": state.feature_names,
            "n_features": len(state.feature_names),
            "use_history": cfg.use_history,
            "excluded": list(cfg.exclude),
            "vocabulary_sizes": {c: len(v) for c, v in state.vocabularies.items()},
        },
        args.selected,
    )
    print(f"featurize: {rows:,} rows x {len(state.feature_names)} features")
    return 0


if __name__ == "__main__":
    run(main)
