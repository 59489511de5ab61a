"""The model artifact: one joblib file holding everything scoring needs, plus its manifest.

The artifact carries the fitted feature state, the model runtime, the decision threshold and
metadata. The manifest beside it records the artifact's sha256, the library versions it was
built with, the environment, the params hash and the feature list; loading refuses a file
whose hash or library versions do not match.
"""

from __future__ import annotations

import io
import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib

from fraud.files import atomic_write_bytes, dump_json, sha256_bytes

if TYPE_CHECKING:
    from fraud.features.state import FeatureState
    from fraud.runtime import Runtime

#: Distributions recorded in the manifest (a name tuple lists alternatives, first found wins).
RECORDED_LIBRARIES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "scikit-learn": ("scikit-learn",),
    "joblib": ("joblib",),
    "xgboost": ("xgboost", "xgboost-cpu"),
}
#: 3: the artifact holds its runtime (``fraud.runtime``: one class per model kind), and the
#: manifest lists the libraries that runtime needs to load (``load_libraries``).
#: 4: the feature state records its ``inputs`` (the optional raw columns it was trained with).
#: 5: entity history (``features.entities``: card, merchant, device) and label-delayed risk.
ARTIFACT_FORMAT = 5


class ArtifactError(ValueError):
    """The artifact or its manifest is missing, corrupt, tampered with or incompatible."""


@dataclass
class ModelArtifact:
    """A trained model with its fitted feature state and decision threshold."""

    kind: str
    model: Runtime
    feature_state: FeatureState
    threshold: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        """The ordered feature names the model expects."""
        return list(self.feature_state.feature_names)


def library_versions() -> dict[str, str]:
    """Versions of the libraries an artifact depends on, as installed now (absent: omitted).

    Read from package metadata, so nothing heavy is imported to learn a version.
    """
    versions = {"python": platform.python_version()}
    for name, distributions in RECORDED_LIBRARIES.items():
        for distribution in distributions:
            try:
                versions[name] = importlib_metadata.version(distribution)
                break
            except importlib_metadata.PackageNotFoundError:
                continue
    return versions


def params_hash(sections: Mapping[str, Any]) -> str:
    """Stable hash of configuration sections (canonical JSON)."""
    canonical = json.dumps(sections, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(canonical.encode())


def serialize(artifact: ModelArtifact) -> bytes:
    """Joblib bytes of the artifact (compressed; deterministic for the same object)."""
    buffer = io.BytesIO()
    joblib.dump(artifact, buffer, compress=3)
    return buffer.getvalue()


def _as_list(value: Any) -> Any:
    """A tuple as the list JSON gives back (so a written manifest equals the one read)."""
    return list(value) if isinstance(value, tuple) else value


def build_manifest(artifact_bytes: bytes, artifact: ModelArtifact, filename: str) -> dict:
    """Manifest for serialized artifact bytes: hash, size, versions and model facts."""
    return {
        "format": ARTIFACT_FORMAT,
        "artifact": filename,
        "sha256": sha256_bytes(artifact_bytes),
        "size_bytes": len(artifact_bytes),
        "kind": artifact.kind,
        "load_libraries": list(artifact.model.libraries),
        "threshold": artifact.threshold,
        "features": artifact.feature_names,
        "train_period": _as_list(getattr(artifact.feature_state, "train_period", None)),
        "library_versions": library_versions(),
        **{k: v for k, v in artifact.metadata.items() if k not in ("library_versions",)},
    }


def save_artifact(artifact: ModelArtifact, path: Path, manifest_path: Path) -> dict:
    """Atomically write the artifact and its manifest; return the manifest."""
    data = serialize(artifact)
    manifest = build_manifest(data, artifact, path.name)
    atomic_write_bytes(path, data)
    atomic_write_bytes(manifest_path, dump_json(manifest))
    return manifest


def read_manifest(manifest_path: Path) -> dict:
    """Read a manifest, failing with the file's name when it is missing or not JSON."""
    try:
        manifest = json.loads(Path(manifest_path).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"manifest not found: {manifest_path}") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"manifest {manifest_path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or "sha256" not in manifest:
        raise ArtifactError(f"manifest {manifest_path} has no 'sha256' field")
    return manifest


def check_versions(
    recorded: Mapping[str, str], installed: Mapping[str, str], needed: Iterable[str]
) -> list[str]:
    """Mismatches (major.minor) between recorded and installed versions of ``needed``."""
    problems = []
    for name in needed:
        want, have = recorded.get(name), installed.get(name)
        if want is None:
            continue
        if have is None:
            problems.append(f"{name} is not installed, artifact built with {want}")
        elif want.split(".")[:2] != have.split(".")[:2]:
            problems.append(f"{name} {have} installed, artifact built with {want}")
    return problems


def load_artifact(path: Path, manifest_path: Path) -> tuple[ModelArtifact, dict]:
    """Load and verify an artifact against its manifest.

    Raises:
        ArtifactError: naming the file and the problem (missing file, hash mismatch, version
            mismatch, corrupt content).
    """
    manifest = read_manifest(manifest_path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"model artifact not found: {path}") from None
    actual = sha256_bytes(data)
    if actual != manifest["sha256"]:
        raise ArtifactError(
            f"model artifact {path} sha256 {actual} does not match manifest "
            f"{manifest_path} ({manifest['sha256']})"
        )
    if manifest.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(
            f"manifest {manifest_path} is format {manifest.get('format')!r}; this code reads "
            f"format {ARTIFACT_FORMAT} - retrain (make retrain) to rebuild the artifact"
        )
    needed = manifest.get("load_libraries")
    if not isinstance(needed, list):
        raise ArtifactError(f"manifest {manifest_path} has no 'load_libraries' list")
    problems = check_versions(manifest.get("library_versions", {}), library_versions(), needed)
    if problems:
        raise ArtifactError(f"model artifact {path} is incompatible: " + "; ".join(problems))
    try:
        artifact = joblib.load(io.BytesIO(data))
    except Exception as exc:  # any unpickling failure means a corrupt file
        raise ArtifactError(f"model artifact {path} is corrupt: {exc}") from None
    if not isinstance(artifact, ModelArtifact):
        raise ArtifactError(f"model artifact {path} holds {type(artifact).__name__}")
    return artifact, manifest
