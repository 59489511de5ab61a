"""compute=dask against compute=local on the same data: the same feature matrix (row for row
after sorting by transaction_id), the same fitted state, test metrics within 0.005 ROC-AUC and
0.01 PR-AUC, byte-identical boosters for one cluster shape; sharded generation and the split.

One in-process LocalCluster of two worker processes serves the module (real pickling, real
shuffles); the scheduler-address path with `dask scheduler` / `dask worker` processes is in
test_dask_cluster.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud.cluster.config import ComputeConfig
from fraud.config import ConfigError, parse_checked
from fraud.data import schema
from fraud.data.split import PARTS, SplitConfig, share_split
from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.features.spec import FeatureConfig
from fraud.model.metrics import evaluate
from fraud.model.train import TrainConfig, XGBoostConfig, fit_model
from stages.featurize import featurize as featurize_local

dd = pytest.importorskip("dask.dataframe")

DATA = DataConfig(n_transactions=12_000, n_users=600, days=30)
#: Enough test fraud (~130 rows) for the metrics to be stable to the tolerances.
TRAIN_DATA = DataConfig(n_transactions=60_000, n_users=3_000, days=60)
MODEL = XGBoostConfig(n_estimators=100)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    from fraud.cluster.engine import cluster

    with cluster(ComputeConfig(name="dask", n_workers=2, memory_limit="2GiB")) as c:
        yield c


@pytest.fixture(scope="module")
def parts() -> dict[str, pd.DataFrame]:
    return share_split(generate_transactions(DATA, 7), SplitConfig())


def matrices(parts: dict[str, pd.DataFrame]) -> tuple[object, dict[str, pd.DataFrame]]:
    """The local engine's state and per-split matrices, with ids, in transaction_id order."""
    state, matrices = featurize_local(parts, FeatureConfig())
    frames = {}
    for name, (x, y) in matrices.items():
        frame = pd.DataFrame(dict(zip(state.feature_names, x, strict=True)))
        frame[schema.LABEL] = y
        frame[schema.TRANSACTION_ID] = parts[name][schema.TRANSACTION_ID].to_numpy()
        frames[name] = frame.sort_values(schema.TRANSACTION_ID, ignore_index=True)
    return state, frames


@pytest.fixture(scope="module")
def local(parts: dict[str, pd.DataFrame]) -> tuple[object, dict[str, pd.DataFrame]]:
    return matrices(parts)


@pytest.fixture(scope="module")
def distributed(client: object, parts: dict[str, pd.DataFrame]) -> tuple[object, dict]:
    from fraud.cluster import features

    lazy = {name: dd.from_pandas(part, npartitions=3) for name, part in parts.items()}
    state, frame = features.featurize(lazy, FeatureConfig(), partitions=4)
    out = frame.compute()
    frames = {
        name: out[out[features.PART] == PARTS.index(name)]
        .drop(columns=features.PART)
        .sort_values(schema.TRANSACTION_ID, ignore_index=True)
        for name in ("train", "valid", "test")
    }
    return state, frames


def test_feature_matrix_equals_the_local_engines_row_for_row(
    local: tuple, distributed: tuple
) -> None:
    (state, expected), (got_state, got) = local, distributed
    assert got_state.to_dict() == state.to_dict()
    assert got_state.feature_names == state.feature_names
    for name in ("train", "valid", "test"):
        ids = schema.TRANSACTION_ID
        assert got[name][ids].tolist() == expected[name][ids].tolist()
        columns = [c for c in expected[name].columns if c != ids]
        pd.testing.assert_frame_equal(
            got[name][columns], expected[name][columns], check_exact=True
        )
    assert len(got["train"]) == len(got["train"][schema.TRANSACTION_ID].unique()) == 8400


def xy(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return frame[names].to_numpy(dtype=np.float64), frame[schema.LABEL].to_numpy(dtype=np.int64)


def test_xgboost_dask_matches_local_metrics_and_repeats_its_bytes(client: object) -> None:
    from fraud.cluster.training import fit_xgboost, scores

    parts = share_split(generate_transactions(TRAIN_DATA, 3), SplitConfig())
    state, frames = matrices(parts)
    names = state.feature_names
    x_test, y_test = xy(frames["test"], names)
    model, _ = fit_model(*xy(frames["train"], names), *xy(frames["valid"], names), MODEL,
                         TrainConfig(), 42, names)  # fmt: skip
    lazy = {name: dd.from_pandas(frame, npartitions=2) for name, frame in frames.items()}
    fitted = [
        fit_xgboost(client, lazy["train"], lazy["valid"], names, MODEL, TrainConfig(), 42)
        for _ in range(2)
    ]
    (first, info), (second, _) = fitted
    assert first.raw == second.raw, "same cluster shape, same data: same booster bytes"
    assert info["rounds"] >= 1
    scored = scores(lazy["test"], first, names)
    assert (
        scored[schema.TRANSACTION_ID].to_numpy() == frames["test"][schema.TRANSACTION_ID]
    ).all()
    np.testing.assert_allclose(scored["score"], first.predict_proba(x_test), rtol=0, atol=0)
    ours = evaluate(y_test, scored["score"].to_numpy(), 0.5, TrainConfig().threshold)
    theirs = evaluate(y_test, model.predict_proba(x_test), 0.5, TrainConfig().threshold)
    assert abs(ours["roc_auc"] - theirs["roc_auc"]) <= 0.005
    assert abs(ours["pr_auc"] - theirs["pr_auc"]) <= 0.01


def test_sharded_generation_is_deterministic_per_shard_with_unique_ids() -> None:
    from fraud.cluster.data import generate_shard, shard_config

    first = generate_shard(DATA, 42, 3, 1)
    assert first.equals(generate_shard(DATA, 42, 3, 1))
    other = generate_shard(DATA, 42, 3, 2)
    assert len(first) == shard_config(DATA, 3, 1).n_transactions == 4000
    assert first[schema.USER_ID].str.startswith("s0001_u_").all()
    assert not set(first[schema.TRANSACTION_ID]) & set(other[schema.TRANSACTION_ID])
    assert not set(first[schema.DEVICE_ID]) & set(other[schema.DEVICE_ID])
    assert sum(shard_config(DATA, 3, i).n_users for i in range(3)) == DATA.n_users


def test_distributed_split_holds_the_local_splits_rows(
    client: object, parts: dict[str, pd.DataFrame]
) -> None:
    from fraud.cluster.data import split

    whole = pd.concat([parts[name] for name in PARTS], ignore_index=True)
    shuffled = whole.sample(frac=1.0, random_state=0)  # partitions in no time order
    frames, summary = split(dd.from_pandas(shuffled, npartitions=4), SplitConfig(), "tx")
    for name in PARTS:
        got = frames[name].compute()
        assert sorted(got[schema.TRANSACTION_ID]) == sorted(parts[name][schema.TRANSACTION_ID])
        assert len(summary[name]) == len(parts[name])


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"name": "spark"}, "compute.name must be one of"),
        ({"name": "dask", "address": "localhost:8786"}, "compute.address must look like"),
        ({"name": "dask", "n_workers": 0}, "compute.n_workers must be >= 1"),
        ({"name": "dask", "partition_rows": 10}, "compute.partition_rows must be >= 1000"),
        ({"name": "dask", "memory_limit": "lots"}, "compute.memory_limit must be like"),
    ],
)
def test_bad_compute_sections_name_the_field(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_checked(section, ComputeConfig, "compute")


def test_compose_refuses_dask_for_a_model_it_cannot_distribute() -> None:
    from stages.compose import compose_params

    with pytest.raises(ConfigError, match="compute=dask trains XGBoost"):
        compose_params(["env=development", "compute=dask", "model=random_forest"])
    _, params = compose_params(["env=development", "compute=dask", "compute.n_workers=3"])
    assert params["compute"]["name"] == "dask"
    assert params["compute"]["n_workers"] == 3


def test_an_unreachable_address_is_named() -> None:
    from fraud.cluster import engine
    from tests.conftest import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    cfg = ComputeConfig(name="dask", address=address)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "CONNECT_TIMEOUT_S", 2)
        opened = engine.cluster(cfg)
        with pytest.raises(OSError, match=f"compute.address {address}: no Dask scheduler"):
            opened.__enter__()


def test_a_failed_dataset_write_leaves_the_previous_output_whole(tmp_path: Path) -> None:
    from stages.common import read_dataset, write_datasets

    good = dd.from_pandas(pd.DataFrame({"a": range(10)}), npartitions=2)
    out = tmp_path / "table.parquet"
    out.write_bytes(b"the previous file")
    write_datasets({out: good})
    assert out.is_dir()
    assert read_dataset(out).compute()["a"].tolist() == list(range(10))

    def fail(pdf: pd.DataFrame) -> pd.DataFrame:
        raise ValueError("a partition failed")

    with pytest.raises(ValueError, match="a partition failed"):
        write_datasets({tmp_path / "other.parquet": good, out: good.map_partitions(fail)})
    assert read_dataset(out).compute()["a"].tolist() == list(range(10))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]
