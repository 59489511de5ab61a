"""Drift check (`make drift`): compare current data with the training reference profile.

    python -m stages.drift --scenario moderate            # synthetic production batch
    python -m stages.drift --current data/external/today.parquet   # .csv / .parquet / .jsonl
    python -m stages.drift --current /var/log/fraud-predictions    # the app's log directory
    python -m stages.drift --url https://fraud.example.com         # the deployed app's window

Writes a JSON and a Markdown report and exits 0 (no drift, or too little data for a verdict),
1 (drift) or 2 (an error, e.g. a missing column, named in the message). Not a DVC stage: it
reads the reference profile the committed models/manifest.json names and the `drift` section
of params.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from fraud.config import PARAMS_FILE, BaseConfig, load_params, load_paths, parse_checked
from fraud.data import schema
from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.files import atomic_write_bytes, dump_json
from fraud.monitoring.auditlog import LOG_SUFFIX, parse_log_lines, read_all
from fraud.monitoring.config import SCORE, DriftConfig, DriftError
from fraud.monitoring.drift import (
    columns_from_records,
    drift_report,
    exit_code,
    require_columns,
)
from fraud.monitoring.markdown import render_markdown
from fraud.monitoring.profile import check_profile
from fraud.monitoring.scenarios import apply_scenario, production_config
from stages.common import read_json, run

URL_TIMEOUT_S = 120


def read_log(path: Path, fields: list[str]) -> dict[str, list]:
    """Columns ``fields`` (+ the score) of an audit log file or directory."""
    if path.is_dir():
        if not any(path.glob(f"*{LOG_SUFFIX}")):
            raise FileNotFoundError(f"no *{LOG_SUFFIX} prediction logs in {path}")
        records = read_all(path)
    else:
        with open(path, "rb") as fh:
            records = parse_log_lines(fh)[0]
    return columns_from_records(records, [*fields, SCORE])


def read_current(path: Path) -> Any:
    """A current dataset, checked and cleaned like the pipeline's input (each bad column named
    with its row count and the file): CSV, Parquet, or None for the app's JSON-lines
    prediction log (file or directory)."""
    import pandas as pd

    from fraud.data.validate import clean_columns

    if not path.exists():
        raise FileNotFoundError(f"current data not found: {path}")
    if path.is_dir() or path.suffix == LOG_SUFFIX:
        return None
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path, low_memory=False)  # one dtype per column, no warning
        else:
            raise DriftError(f"current data {path}: expected .csv, .parquet or {LOG_SUFFIX}")
    except pd.errors.EmptyDataError:
        raise DriftError(f"current data {path}: the file is empty (no header, no rows)") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        if isinstance(exc, DriftError):
            raise
        raise DriftError(f"current data {path}: cannot be read: {str(exc)[:300]}") from None
    for name in (schema.HOUR, schema.DAY):
        if name in frame and schema.TIMESTAMP not in frame:
            frame[name] = _integer_column(frame[name], name, path)
    return clean_columns(frame, str(path))


def _integer_column(values: Any, name: str, path: Path) -> Any:
    """``values`` as integers in their range (hour 0-23, day 0-6), or DriftError counting the
    bad rows."""
    import pandas as pd

    upper = 23 if name == schema.HOUR else 6
    number = pd.to_numeric(values, errors="coerce")
    bad = number.isna() | (number % 1 != 0) | (number < 0) | (number > upper)
    if bad.any():
        n = int(bad.sum())
        raise DriftError(
            f"{path}: column '{name}': {n} row{'s' if n != 1 else ''} not an integer 0-{upper}"
        )
    return number.astype("int64")


def model_scores(frame: Any, manifest: Path, profile: dict) -> np.ndarray | None:
    """The served model's scores of full transactions (every entity's history computed in the
    batch; rows without a label count as unlabelled).

    None when the frame lacks a column the model's features need (the user, the time and the
    model's own inputs). Refuses a model whose sha256 differs from the one the profile was
    built for.
    """
    import pandas as pd

    from fraud.features.history import compute_history
    from fraud.features.transform import transform
    from fraud.runtime.artifact import load_artifact

    artifact, facts = load_artifact(manifest)
    state = artifact.feature_state
    needed = (schema.USER_ID, schema.TIMESTAMP, *state.record_fields, *state.inputs)
    if any(name not in frame for name in needed):
        return None
    expected = profile.get("model", {}).get("sha256")
    if facts.get("sha256") != expected:
        raise DriftError(
            f"reference profile was built for model {expected!r} but {manifest} is "
            f"{facts.get('sha256')!r}: use the profile promoted with that model"
        )
    frame = frame.reset_index(drop=True)
    if not isinstance(frame[schema.TIMESTAMP].dtype, pd.DatetimeTZDtype):
        frame = frame.assign(
            **{schema.TIMESTAMP: pd.to_datetime(frame[schema.TIMESTAMP], utc=True)}
        )
    history = compute_history(frame, state.config)
    return artifact.model.predict_proba(transform(pd.concat([frame, history], axis=1), state))


def fetch_report(url: str, token: str | None) -> dict:
    """GET <url>/monitoring/drift with the bearer token; the app's report, or DriftError."""
    if not url.startswith(("http://", "https://")):
        raise DriftError(f"--url must start with http:// or https://, got {url!r}")
    if not token:
        raise DriftError("--url needs the MONITORING_TOKEN environment variable")
    endpoint = url.rstrip("/") + "/monitoring/drift"
    headers = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(endpoint, headers=headers)  # noqa: S310 (scheme checked)
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT_S) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode(errors="replace")
        raise DriftError(f"{endpoint} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise DriftError(f"cannot reach {endpoint}: {exc}") from None
    try:
        report = json.loads(body)
    except ValueError:
        raise DriftError(f"{endpoint} did not answer JSON") from None
    if not isinstance(report, dict) or "verdict" not in report:
        raise DriftError(f"{endpoint} did not answer a drift report")
    return report


def build_report(args: argparse.Namespace, cfg: DriftConfig) -> tuple[dict, str]:
    """The report for the chosen input, and a title for the Markdown."""
    if args.url:
        report = fetch_report(args.url, os.environ.get("MONITORING_TOKEN"))
        return report, f"Drift report: deployed app {args.url}"
    profile = check_profile(read_json(args.reference, "reference profile"))
    fields = list(profile["features"])
    scores = None
    if args.scenario:
        if args.scenario not in cfg.scenarios:
            raise DriftError(
                f"unknown scenario {args.scenario!r}; conf/drift has {', '.join(cfg.scenarios)}"
            )
        params = load_params(["base", "data"], args.params)
        base = parse_checked(params["base"], BaseConfig, "base")
        data = parse_checked(params["data"], DataConfig, "data")
        rows = args.rows or cfg.synthetic.rows
        seed = cfg.synthetic.seed if args.seed is None else args.seed
        batch_cfg = production_config(data, rows)
        batch = generate_transactions(batch_cfg, seed)
        frame = apply_scenario(batch, cfg.scenarios[args.scenario], np.random.default_rng(seed))
        source = (
            f"synthetic {base.env} batch, scenario {args.scenario}, {rows:,} rows from "
            f"{batch_cfg.start}, seed {seed}"
        )
        scores = model_scores(frame, args.manifest, profile)
        current: Any = frame
    else:
        source = str(args.current)
        frame = read_current(args.current)
        if frame is None:
            current = read_log(args.current, fields)
            scores = current.get(SCORE)
        else:
            current = frame
            require_columns(profile, current, source)
            if SCORE in current:
                scores = current[SCORE].to_numpy(dtype=np.float64)
            else:
                scores = model_scores(current, args.manifest, profile)
    report = drift_report(profile, current, cfg.rule, scores=scores, source=source)
    return report, f"Drift report: {source}"


def main(argv: list[str] | None = None) -> int:
    """Compute (or fetch) the report, write JSON and Markdown, exit by the verdict."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--current", type=Path, help="CSV, Parquet or .jsonl log (file or dir)")
    what.add_argument("--scenario", help="synthetic production batch with this drift scenario")
    what.add_argument("--url", help="deployed app base URL (token in MONITORING_TOKEN)")
    ap.add_argument("--rows", type=int, help="synthetic batch rows (default drift.synthetic)")
    ap.add_argument("--seed", type=int, help="synthetic batch seed (default drift.synthetic)")
    ap.add_argument(
        "--reference", type=Path, help="default: the profile the served manifest names"
    )
    ap.add_argument("--model-dir", type=Path, help="default: paths.model_dir (models/)")
    ap.add_argument("--json-out", type=Path, help="default: <paths.drift_reports>/*.json")
    ap.add_argument("--md-out", type=Path, help="default: <paths.drift_reports>/*.md")
    ap.add_argument("--params", type=Path, default=PARAMS_FILE)
    args = ap.parse_args(argv)
    if args.rows is not None and args.rows < 1:
        ap.error("--rows must be >= 1")
    if (args.rows is not None or args.seed is not None) and not args.scenario:
        ap.error("--rows and --seed apply to --scenario only")

    started = time.perf_counter()
    paths = load_paths(args.params)
    from fraud.runtime.artifact import MANIFEST, member, read_manifest

    args.manifest = (args.model_dir or Path(paths.model_dir)) / MANIFEST
    if args.reference is None:
        args.reference = member(args.manifest, read_manifest(args.manifest), "profile")
    args.json_out = args.json_out or Path(paths.drift_reports) / "drift_report.json"
    args.md_out = args.md_out or Path(paths.drift_reports) / "drift_report.md"
    cfg = parse_checked(load_params(["drift"], args.params)["drift"], DriftConfig, "drift")
    report, title = build_report(args, cfg)
    code = exit_code(report)
    atomic_write_bytes(args.json_out, dump_json(report))
    atomic_write_bytes(args.md_out, render_markdown(report, title).encode())
    drifted = ", ".join(report.get("drifted_features", [])) or "none"
    score = report.get("score", {})
    print(
        f"drift: {report['verdict']} ({report['rows']['current']:,} rows; drifted features: "
        f"{drifted}; model score: {score.get('verdict', 'n/a')}) in "
        f"{time.perf_counter() - started:.1f} s -> {args.json_out}, {args.md_out}"
    )
    return code


if __name__ == "__main__":
    run(main)
