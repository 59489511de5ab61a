"""Record the served production model's test metrics as the baseline the gate compares with.

Run after a production retrain has passed the gate (the retrain workflow does it for
production only); refuses a model trained for another environment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fraud.config import PARAMS_FILE, ConfigError, load_paths
from fraud.files import atomic_write_bytes, dump_json
from fraud.runtime.artifact import MANIFEST, ArtifactError, read_manifest


def main(argv: list[str] | None = None) -> int:
    """Write the baseline JSON from models/manifest.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, help="default: paths.model_dir (models/)")
    ap.add_argument("--out", type=Path, help="default: paths.baseline")
    ap.add_argument("--params", type=Path, default=PARAMS_FILE)
    args = ap.parse_args(argv)
    try:
        if args.model_dir is None or args.out is None:
            paths = load_paths(args.params)
            args.model_dir = args.model_dir or Path(paths.model_dir)
            args.out = args.out or Path(paths.baseline)
        args.manifest = args.model_dir / MANIFEST
        manifest = read_manifest(args.manifest)
    except (ArtifactError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if manifest.get("env") != "production" or "test_metrics" not in manifest:
        print(
            f"error: {args.manifest} is not a gated production model "
            f"(env {manifest.get('env')!r}); baseline unchanged",
            file=sys.stderr,
        )
        return 2
    baseline = {
        "env": "production",
        "sha256": manifest["sha256"],
        "params_hash": manifest.get("params_hash"),
        "metrics": manifest["test_metrics"],
    }
    atomic_write_bytes(args.out, dump_json(baseline))
    print(f"baseline: {args.out} <- {args.manifest} ({manifest['sha256'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
