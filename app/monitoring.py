"""Monitoring in the app: the audit log of predictions and GET /monitoring/drift.

``log_predictions`` appends each scored transaction to the audit log (``app.audit``: a
per-process JSON-lines file with the prediction id, the validated request fields, the score,
the decision and the served model; no headers or secrets), buffered, rotated at
``PREDICTION_LOG_MAX_BYTES``, at most ``PREDICTION_LOG_MAX_FILES`` files per directory.

``GET /monitoring/drift`` answers 404 unless ``MONITORING_TOKEN`` is configured, 401 without
that bearer token, else the drift report (fraud/monitoring/drift.py) of the most recent
``MONITORING_WINDOW`` records of every worker's files against the reference profile promoted
with the served model, under the alert rule of the ``drift`` section (conf/drift/) that the
promote stage ships in the manifest, so the service never reads params.yaml.

Logging is on when ``PREDICTION_LOG_DIR``, ``MONITORING_TOKEN`` or ``FEEDBACK_TOKEN`` is set
(the directory then defaults to ``<tmp>/fraud-predictions-<uid>``, private to this user);
otherwise ``log_predictions`` returns at once.
Settings are resolved once, in ``app.settings``.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from app.audit import PredictionLog
from app.errors import error_payload
from app.settings import SETTINGS
from fraud.monitoring.auditlog import read_labels, read_window
from fraud.monitoring.config import SCORE, DriftConfig, DriftError, ProfileConfig
from fraud.monitoring.drift import columns_from_records, drift_report
from fraud.monitoring.performance import estimated, join, realized
from fraud.monitoring.profile import check_profile
from fraud.runtime.artifact import ArtifactError, read_profile

#: What an audit line holds beside the validated request fields (``app.audit``).
AUDIT_FIELDS = ("prediction_id", SCORE, "decision", "history_source")

bp = Blueprint("monitoring", __name__)
logger = logging.getLogger(__name__)


@dataclass
class Monitoring:
    """What the endpoint needs, in ``app.extensions["monitoring"]``."""

    settings: dict[str, Any]
    log: PredictionLog | None
    #: The ``drift`` section the promote stage shipped in the manifest (None: none shipped).
    drift: Mapping[str, Any] | None
    #: The reference profile's bytes (read and verified at boot), or why there are none.
    profile: bytes | str
    manifest_path: Path
    cache: dict[str, Any] = field(default_factory=dict)

    def reference(self) -> tuple[dict, DriftConfig]:
        """The reference profile and the drift config, read once per process."""
        if "profile" not in self.cache:
            from fraud.config import parse_checked

            if isinstance(self.profile, str):
                raise DriftError(self.profile)
            where = f"the reference profile of {self.manifest_path}"
            try:
                profile = orjson.loads(self.profile)
            except orjson.JSONDecodeError as exc:
                raise DriftError(f"{where} is not JSON: {exc}") from None
            if self.drift is None:
                raise DriftError(f"manifest {self.manifest_path} has no drift section")
            cfg = parse_checked(self.drift, DriftConfig, "drift")
            self.cache["profile"] = check_profile(profile, where)
            self.cache["config"] = cfg
        return self.cache["profile"], self.cache["config"]


def _logged_fields(profile: bytes | str) -> list[str]:
    """The fields the reference profile monitors (the configured defaults if unreadable)."""
    try:
        features = orjson.loads(profile)["features"] if isinstance(profile, bytes) else None
        if isinstance(features, dict) and features:
            return [str(name) for name in features]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        pass
    defaults = ProfileConfig()
    return [*defaults.numeric, *defaults.categorical]


def _private_directory(name: str) -> Path:
    """``<tmp>/<name>``, created 0700, refused unless this user owns it and nobody else may
    write or read it: the default prediction log is shared by this user's workers only (a
    shared /tmp directory would let another account read scored transactions or plant rows)."""
    path = Path(tempfile.gettempdir()) / name
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if path.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeError(
            f"{path} is not a private directory of this user (owner uid {info.st_uid}, "
            f"mode {oct(info.st_mode & 0o777)}): set PREDICTION_LOG_DIR"
        )
    return path


def init_monitoring(app: Flask, manifest_path: Path, manifest: Mapping[str, Any]) -> None:
    """Set up the prediction log (when configured) and register GET /monitoring/drift.

    The reference profile is read now, with the model: a later promotion into the same
    directory (``fraud.runtime.artifact.publish``) removes the files of the set served here.
    """
    settings = {key: app.config[key] for key in SETTINGS}
    try:
        profile: bytes | str = read_profile(manifest_path, manifest)
    except ArtifactError as exc:
        profile = str(exc)
    directory = settings["PREDICTION_LOG_DIR"]
    if directory is None and (settings["MONITORING_TOKEN"] or settings["FEEDBACK_TOKEN"]):
        directory = _private_directory(f"fraud-predictions-{os.getuid()}")
        settings["PREDICTION_LOG_DIR"] = directory
    log = None
    if directory is not None:
        validate = getattr(app.extensions.get("fraud"), "validate", None)
        inputs = list(getattr(validate, "fields", ()))
        log = PredictionLog(
            directory,
            [*AUDIT_FIELDS, *inputs, *_logged_fields(profile)],
            settings["PREDICTION_LOG_MAX_BYTES"],
            settings["PREDICTION_LOG_MAX_FILES"],
            settings["PREDICTION_LOG_FLUSH_SECONDS"],
            required=(SCORE,),
            constant={
                "model_version": str(manifest.get("sha256", ""))[:12],
                "model_sha256": manifest.get("sha256"),
                "threshold": manifest.get("threshold"),
            },
        )
    app.extensions["monitoring"] = Monitoring(
        settings, log, manifest.get("drift"), profile, manifest_path
    )
    app.register_blueprint(bp)


def log_predictions(app: Flask, records: list[dict]) -> None:
    """Append scored records (``AUDIT_FIELDS`` and the validated request fields) to the audit
    log; never raises."""
    monitoring = app.extensions.get("monitoring")
    if monitoring is not None and monitoring.log is not None and records:
        monitoring.log.write(records)


def _error(status: int, error: str, message: str) -> tuple[Response, int]:
    return jsonify(error_payload(error, message)), status


def _authorized(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _check_token(monitoring: Monitoring) -> tuple[Response, int] | None:
    """404 without MONITORING_TOKEN, 401 without it as the bearer token, else None."""
    token = monitoring.settings["MONITORING_TOKEN"]
    if not token:
        return _error(404, "not_found", "monitoring is disabled (no MONITORING_TOKEN)")
    if not _authorized(token):
        response, status = _error(401, "unauthorized", "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="monitoring"'
        return response, status
    return None


@bp.get("/monitoring/drift")
def drift() -> tuple[Response, int]:
    """The drift report of the most recent window of predictions across all workers."""
    monitoring: Monitoring = current_app.extensions["monitoring"]
    denied = _check_token(monitoring)
    if denied is not None:
        return denied
    try:
        profile, cfg = monitoring.reference()
    except ValueError as exc:
        logger.error("monitoring unavailable: %s", exc)
        return _error(503, "monitoring_unavailable", str(exc))
    served = getattr(current_app.extensions.get("fraud"), "manifest", {}).get("sha256")
    built_for = profile.get("model", {}).get("sha256")
    if served is not None and served != built_for:
        return _error(
            409,
            "reference_mismatch",
            f"the reference profile was built for model {built_for!r}, the app serves "
            f"{served!r}: deploy the profile promoted with the served model",
        )
    if monitoring.log is not None:
        monitoring.log.flush()
    window = monitoring.settings["MONITORING_WINDOW"]
    directory = monitoring.settings["PREDICTION_LOG_DIR"]
    records = read_window(directory, window) if directory is not None else []
    columns = columns_from_records(records, [*profile["features"], SCORE])
    scores = columns.pop(SCORE, None)
    try:
        report = drift_report(
            profile,
            columns,
            cfg.rule,
            scores=scores,
            source=f"the app's last {len(records):,} predictions (window {window:,})",
        )
    except DriftError as exc:
        logger.error("drift report failed: %s", exc)
        return _error(500, "drift_error", str(exc))
    return jsonify(report), 200


def _card_precision_k(manifest: Mapping[str, Any]) -> int:
    """The k of the model's Card Precision@k (its test metric's name), else 100."""
    for name in manifest.get("test_metrics") or {}:
        match = re.fullmatch(r"card_precision_at_([1-9][0-9]*)", name)
        if match:
            return int(match.group(1))
    return 100


def performance_report(
    monitoring: Monitoring, manifest: Mapping[str, Any], genuine_after_s: float | None
) -> dict[str, Any]:
    """Realized (feedback labels) and estimated (CBPE) performance of the latest
    ``PERFORMANCE_WINDOW`` predictions of every worker (``fraud.monitoring.performance``)."""
    if monitoring.log is not None:
        monitoring.log.flush()
    directory = monitoring.settings["PREDICTION_LOG_DIR"]
    window = monitoring.settings["PERFORMANCE_WINDOW"]
    records = read_window(directory, window) if directory is not None else []
    labels = read_labels(directory) if directory else {}
    joined = join(records, labels, genuine_after_s)
    threshold = joined.threshold if joined.threshold is not None else manifest.get("threshold")
    k = _card_precision_k(manifest)
    realized_metrics = realized(joined, k, threshold)
    estimate = estimated(joined.scores, float(threshold)) if threshold is not None else {}
    ece = (manifest.get("test_metrics") or {}).get("expected_calibration_error")
    max_ece = monitoring.settings["CBPE_MAX_ECE"]
    estimate["expected_calibration_error"] = ece
    estimate["trusted"] = ece is not None and ece <= max_ece
    estimate["why"] = (
        f"the model's test expected calibration error {ece} is within CBPE_MAX_ECE {max_ece}"
        if estimate["trusted"]
        else f"calibration too poor to trust: the model's test expected calibration error is "
        f"{ece} (CBPE_MAX_ECE {max_ece})"
    )
    return {
        "source": f"the app's last {len(records):,} predictions (window {window:,}), "
        f"{len(labels):,} labelled transactions",
        "genuine_after_s": genuine_after_s,
        "realized": realized_metrics,
        "estimated": estimate,
    }


@bp.get("/monitoring/performance")
def performance() -> tuple[Response, int]:
    """Realized and estimated performance over the latest window of predictions.

    ``?genuine_after_s=``: an unlabelled prediction scored longer ago than this (before the
    newest one) counts as genuine; default the model's label delay; ``none``: never.
    """
    monitoring: Monitoring = current_app.extensions["monitoring"]
    denied = _check_token(monitoring)
    if denied is not None:
        return denied
    state = current_app.extensions.get("fraud")
    manifest = getattr(state, "manifest", {})
    raw = request.args.get("genuine_after_s")
    if raw is None:
        config = getattr(
            getattr(getattr(state, "scorer", None), "artifact", None), "feature_state", None
        )
        delay = getattr(getattr(config, "config", None), "label_delay_days", None)
        genuine_after_s = None if delay is None else float(delay) * 86_400
    elif raw.lower() == "none":
        genuine_after_s = None
    else:
        try:
            genuine_after_s = float(raw)
        except ValueError:
            genuine_after_s = -1.0
        if not (genuine_after_s >= 0 and genuine_after_s < float("inf")):
            return _error(400, "bad_request", "genuine_after_s must be a number >= 0 or none")
    report = performance_report(monitoring, manifest, genuine_after_s)
    metrics = getattr(state, "metrics", None)
    if metrics is not None:
        metrics.observe_performance("realized", report["realized"])
        metrics.observe_performance("estimated", report["estimated"])
    return jsonify(report), 200
