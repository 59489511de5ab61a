"""The service's settings: one table, one resolver.

Each setting is taken from the explicit ``config`` mapping given to ``create_app``, else the
environment variable of the same name, else its default here. A ``None`` default means "from
the promoted manifest" (``serving``: risk bands, reasons, batch size, chosen in conf/serving/),
or "off" (``MONITORING_TOKEN``, ``PREDICTION_LOG_DIR``), as the comments below say. The path
defaults equal conf/paths/default.yaml's ``model_dir`` and ``selected_features`` (a test
holds them equal); the service never reads params.yaml. ``MODEL_DIR/manifest.json`` names
the artifact and reference profile to load (``fraud.runtime.artifact``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fraud.store import DEFAULT_URL

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Setting -> (default, type).
SETTINGS: dict[str, tuple[Any, type]] = {
    "MODEL_DIR": ("models", Path),  # its manifest.json names the artifact and profile
    "FEATURES_PATH": ("data/selected_features.json", Path),
    "MAX_CONTENT_LENGTH": (8 * 1024 * 1024, int),
    "MAX_PREDICT_LENGTH": (64 * 1024, int),  # body limit of POST /predict (one transaction)
    "MAX_BATCH": (None, int),  # default: the manifest's serving.max_batch
    "RISK_MEDIUM": (None, float),  # default: serving.risk_medium
    "RISK_HIGH": (None, float),  # default: serving.risk_high
    "TOP_REASONS": (None, int),  # default: serving.top_reasons
    "MONITORING_TOKEN": (None, str),  # default: no drift or performance endpoint
    "FEEDBACK_TOKEN": (None, str),  # default: no POST /feedback
    "API_KEYS": (None, str),  # name:sha256 entries (app.keys); default: open scoring endpoints
    "PREDICTION_LOG_DIR": (None, Path),  # default: no prediction log (unless a token is set)
    "PREDICTION_LOG_MAX_BYTES": (8 * 1024 * 1024, int),
    "PREDICTION_LOG_MAX_FILES": (16, int),
    "PREDICTION_LOG_FLUSH_SECONDS": (1.0, float),
    "MONITORING_WINDOW": (50_000, int),
    "PERFORMANCE_WINDOW": (200_000, int),  # latest predictions /monitoring/performance reads
    # trust estimated performance up to this test ECE (README: Closing the loop, measured)
    "CBPE_MAX_ECE": (0.0025, float),
    # the online feature store: sqlite:///<path> (default; relative to the repository),
    # redis://... or rediss://... (several instances), none (history only from requests)
    "FEATURE_STORE_URL": (DEFAULT_URL, str),
    "FEATURE_STORE_MAX_LATENESS": (86_400, int),  # s a transaction may come after newer ones
    "FEATURE_STORE_DEBUG": (0, int),  # 1: answers carry the history the store computed
}
#: Settings the manifest's ``serving`` section supplies when not set.
FROM_MANIFEST = {
    "MAX_BATCH": "max_batch",
    "RISK_MEDIUM": "risk_medium",
    "RISK_HIGH": "risk_high",
    "TOP_REASONS": "top_reasons",
}
#: Settings that must be >= 1.
POSITIVE = (
    "MAX_CONTENT_LENGTH",
    "MAX_PREDICT_LENGTH",
    "MAX_BATCH",
    "PREDICTION_LOG_MAX_BYTES",
    "PREDICTION_LOG_MAX_FILES",
    "MONITORING_WINDOW",
    "PERFORMANCE_WINDOW",
)


def resolve(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every setting typed: ``config``, else the environment, else the default.

    Relative paths are relative to the repository (the image's WORKDIR mirrors it). Values
    taken from the manifest are filled in later by ``with_manifest``.
    """
    given = dict(config or {})
    unknown = sorted(set(given) - set(SETTINGS))
    resolved: dict[str, Any] = {key: given.pop(key) for key in unknown}  # Flask's own keys
    for key, (default, kind) in SETTINGS.items():
        raw = given.get(key, os.environ.get(key))
        if raw is None or raw == "":
            resolved[key] = default if default is None else kind(default)
            continue
        try:
            resolved[key] = raw if isinstance(raw, kind) else kind(raw)
        except (TypeError, ValueError):
            raise ValueError(f"setting {key}={raw!r} is not a {kind.__name__}") from None
    for key, value in resolved.items():
        if isinstance(value, Path) and not value.is_absolute():
            resolved[key] = REPO_ROOT / value
    return resolved


def with_manifest(settings: dict[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with the unset serving values taken from the manifest, then checked.

    Raises:
        ValueError: the manifest has no ``serving`` section for an unset value, or a value is
            out of range.
    """
    out = dict(settings)
    serving = manifest.get("serving")
    for key, name in FROM_MANIFEST.items():
        if out[key] is not None:
            continue
        if not isinstance(serving, Mapping) or name not in serving:
            raise ValueError(
                f"{key} is not set and the manifest has no serving.{name} (retrain: the "
                "promote stage writes it from conf/serving/)"
            )
        try:
            out[key] = SETTINGS[key][1](serving[name])
        except (TypeError, ValueError):
            raise ValueError(f"serving.{name} {serving[name]!r} is not a number") from None
    for key in POSITIVE:
        if out[key] < 1:
            raise ValueError(f"{key} must be >= 1, got {out[key]}")
    if out["FEATURE_STORE_MAX_LATENESS"] < 0:
        raise ValueError(
            f"FEATURE_STORE_MAX_LATENESS must be >= 0, got {out['FEATURE_STORE_MAX_LATENESS']}"
        )
    return out
