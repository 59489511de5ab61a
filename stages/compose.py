"""Compose conf/ with Hydra into params.yaml (the single file every stage reads).

    python -m stages.compose env=staging model=random_forest model.n_estimators=500

The result is validated section by section before anything is written, and written
atomically, so an invalid override or an unknown key leaves params.yaml untouched. The text
is exactly what DVC's Hydra integration (`dvc exp run -S ...`) writes for the same overrides.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fraud.config import ConfigError
from fraud.files import atomic_write_bytes
from stages.params import validate_params

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def compose_params(overrides: list[str], conf_dir: Path = CONF_DIR) -> tuple[str, dict[str, Any]]:
    """Compose the config with Hydra ``overrides``; return ``(yaml_text, params)``.

    Raises:
        ConfigError: for an invalid override, an unknown key or a value of the wrong type.
    """
    try:
        with initialize_config_dir(str(conf_dir.resolve()), version_base=None):
            cfg = compose(config_name="config", overrides=overrides)
        OmegaConf.resolve(cfg)
        params = OmegaConf.to_container(cfg, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"cannot compose conf/ with {overrides}: {message}") from None
    validate_params(params)  # type: ignore[arg-type]
    return OmegaConf.to_yaml(cfg), params  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    """Compose and write params.yaml; print the environment and where it went."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env=production")
    ap.add_argument("--out", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    try:
        text, params = compose_params(args.overrides)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}\n{args.out} left unchanged", file=sys.stderr)
        return 2
    if not args.out.exists() or args.out.read_text() != text:
        atomic_write_bytes(args.out, text.encode())
    changes = [o for o in args.overrides if not o.lstrip("+~").startswith("env=")]
    listed = f": {' '.join(changes)}" if changes else ""
    print(f"{args.out}: env={params['base']['env']}, {len(changes)} override(s){listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
