"""Drift monitoring in the app: a bounded prediction log and GET /monitoring/drift.

``log_predictions`` appends each scored transaction (the monitored request fields, the score
and the time; no ids, headers or secrets) to a per-process JSON-lines file. Lines are
buffered in memory and written as whole lines at most every ``PREDICTION_LOG_FLUSH_SECONDS``
(or 64 KiB), so workers never interleave partial lines and the hot path costs a few
microseconds. A file rotates at ``PREDICTION_LOG_MAX_BYTES``; the directory keeps the
``PREDICTION_LOG_MAX_FILES`` most recently written files, so disk use is bounded. An I/O
error is logged and the records dropped: monitoring never breaks scoring.

``GET /monitoring/drift`` answers 404 unless ``MONITORING_TOKEN`` is configured, 401 without
that bearer token, else the drift report (fraud/monitoring/drift.py) of the most recent
``MONITORING_WINDOW`` records of every worker's files against the reference profile promoted
with the served model, under the alert rule of the ``drift`` section (conf/drift/) that the
promote stage ships in the manifest, so the service never reads params.yaml.

Logging is on when ``PREDICTION_LOG_DIR`` or ``MONITORING_TOKEN`` is set (the directory then
defaults to ``<tmp>/fraud-predictions-<uid>``, private to this user); otherwise
``log_predictions`` returns at once.
Settings are resolved once, in ``app.settings``.
"""

from __future__ import annotations

import atexit
import hmac
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from app.errors import error_payload
from app.settings import SETTINGS
from fraud.monitoring.config import SCORE, DriftConfig, DriftError, ProfileConfig
from fraud.monitoring.drift import columns_from_records, drift_report, parse_log_lines
from fraud.monitoring.profile import check_profile
from fraud.runtime.artifact import ArtifactError, read_profile

LOG_SUFFIX = ".jsonl"
FLUSH_BYTES = 64 * 1024

bp = Blueprint("monitoring", __name__)
logger = logging.getLogger(__name__)


class PredictionLog:
    """Buffered, size-rotated JSON-lines log of one process, in a directory shared by all."""

    def __init__(
        self,
        directory: Path,
        fields: Iterable[str],
        max_bytes: int,
        max_files: int,
        flush_seconds: float,
    ) -> None:
        self.directory = Path(directory)
        self.fields = tuple(fields)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._last_flush = time.monotonic()
        self._fd: int | None = None
        self._pid = 0
        self._path: Path | None = None
        self._size = 0
        atexit.register(self.close)

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Buffer one line per record; flush when due. Never raises."""
        fields = self.fields
        now = round(time.time(), 3)
        try:
            data = b"".join(
                orjson.dumps(
                    {
                        **{name: r[name] for name in fields if name in r},
                        SCORE: r[SCORE],
                        "logged_at": now,
                    }
                )
                + b"\n"
                for r in records
            )
        except (KeyError, TypeError, orjson.JSONEncodeError) as exc:
            logger.warning("prediction log: record not logged: %s", exc)
            return
        with self._lock:
            self._buffer.append(data)
            self._buffered += len(data)
            if (
                self._buffered >= FLUSH_BYTES
                or time.monotonic() - self._last_flush >= self.flush_seconds
            ):
                self._flush_locked()

    def flush(self) -> None:
        """Write buffered lines now. Never raises."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush and close this process's file."""
        with self._lock:
            self._flush_locked()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        try:
            if self._fd is None or self._pid != os.getpid() or self._size >= self.max_bytes:
                self._fd = self._open_new()
            os.write(self._fd, data)
            self._size += len(data)
        except OSError as exc:
            logger.error("prediction log: %d bytes dropped: %s", len(data), exc)
            self._size = self.max_bytes  # start a fresh file on the next flush

    def _open_new(self) -> int:
        """Start a new file (first write, new process, or rotation), prune old files; its fd."""
        if self._fd is not None and self._pid == os.getpid():
            fd, self._fd = self._fd, None
            os.close(fd)
        self._fd = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._path = self.directory / f"{time.time_ns():020d}-{self._pid}{LOG_SUFFIX}"
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = 0
        self._prune()
        return fd

    def _prune(self) -> None:
        """Delete the least recently written files beyond ``max_files`` (never our own)."""
        files = []
        for path in self.directory.glob(f"*{LOG_SUFFIX}"):
            try:
                files.append((path.stat().st_mtime, path.name, path))
            except FileNotFoundError:
                continue
        files.sort(reverse=True)
        for _, _, path in files[self.max_files :]:
            if path != self._path:
                path.unlink(missing_ok=True)


def read_window(directory: Path, window: int) -> list[dict]:
    """The ``window`` most recently logged records across every process's files, oldest first.

    Files are read newest first; once ``window`` records are in hand, a file last written
    before the oldest of them cannot hold a newer record, so reading stops there.
    """
    files = []
    for path in Path(directory).glob(f"*{LOG_SUFFIX}"):
        try:
            files.append((path.stat().st_mtime, path.name, path))
        except FileNotFoundError:
            continue
    files.sort(reverse=True)
    parts: list[list[dict]] = []
    count = 0
    for mtime, _, path in files:
        if count >= window:
            newest = sorted(r.get("logged_at", 0.0) for part in parts for r in part)
            cutoff = newest[-window]
            if mtime < cutoff:
                break
        try:
            with open(path, "rb") as fh:
                part = parse_log_lines(fh)[0]
        except FileNotFoundError:
            continue
        parts.append(part)
        count += len(part)
    # Oldest file first, then a stable sort by time: ties keep each file's own order.
    records = [r for part in reversed(parts) for r in part]
    records.sort(key=lambda r: r.get("logged_at", 0.0))
    return records[-window:]


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
    if directory is None and settings["MONITORING_TOKEN"]:
        directory = _private_directory(f"fraud-predictions-{os.getuid()}")
        settings["PREDICTION_LOG_DIR"] = directory
    log = None
    if directory is not None:
        log = PredictionLog(
            directory,
            _logged_fields(profile),
            settings["PREDICTION_LOG_MAX_BYTES"],
            settings["PREDICTION_LOG_MAX_FILES"],
            settings["PREDICTION_LOG_FLUSH_SECONDS"],
        )
    app.extensions["monitoring"] = Monitoring(
        settings, log, manifest.get("drift"), profile, manifest_path
    )
    app.register_blueprint(bp)


def log_predictions(app: Flask, records: list[dict]) -> None:
    """Append scored records (validated request fields + fraud_probability); never raises."""
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


@bp.get("/monitoring/drift")
def drift() -> tuple[Response, int]:
    """The drift report of the most recent window of predictions across all workers."""
    monitoring: Monitoring = current_app.extensions["monitoring"]
    token = monitoring.settings["MONITORING_TOKEN"]
    if not token:
        return _error(404, "not_found", "monitoring is disabled (no MONITORING_TOKEN)")
    if not _authorized(token):
        response, status = _error(401, "unauthorized", "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="monitoring"'
        return response, status
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
