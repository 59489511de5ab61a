"""The model artifact: one file holding everything scoring needs, plus its manifest.

The artifact is a zip of one JSON document (kind, threshold, metadata, the fitted feature
state, the runtime's scalars) and the runtime's own files: for XGBoost the booster's UBJSON
and the compiled trees as ``.npy`` arrays, read with ``allow_pickle=False``, so loading the
default model unpickles nothing; a scikit-learn model is a joblib (pickle) member. Its
bytes are deterministic. The manifest beside it records the artifact's file name and sha256,
the library versions it was built with, the environment, the params hash and the feature
list; loading refuses a file whose hash, format or library versions do not match.

``publish`` promotes a set (artifact, manifest, reference profile) into a model directory
atomically: the artifact and profile go in under names carrying the model's sha256, then
the manifest, which names them, replaces the old one in one rename. A reader that opens
the manifest first sees the old set or the new one, never a mix; a crash before the rename
leaves the old set serving.
"""

from __future__ import annotations

import io
import json
import platform
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraud.features.state import FeatureState
from fraud.files import atomic_write_bytes, dump_json, sha256_bytes
from fraud.runtime.sklearn_model import ForestModel, LogisticModel
from fraud.runtime.xgboost_model import XGBoostModel

if TYPE_CHECKING:
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
#: 6: a zip of JSON and arrays instead of a pickle; promoted sets are named by sha256.
ARTIFACT_FORMAT = 6
#: The manifest's file name in a model directory: the pointer to the current set.
MANIFEST = "manifest.json"
#: The runtime classes an artifact may hold, by the name its document records.
RUNTIMES: dict[str, Any] = {cls.name: cls for cls in (XGBoostModel, ForestModel, LogisticModel)}
_DOCUMENT = "artifact.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same artifact, the same bytes


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
    """The artifact as zip bytes (deflated; deterministic for the same object)."""
    scalars, files = artifact.model.to_files()
    document = {
        "format": ARTIFACT_FORMAT,
        "kind": artifact.kind,
        "runtime": artifact.model.name,
        "runtime_scalars": scalars,
        "threshold": float(artifact.threshold),
        "feature_state": artifact.feature_state.to_dict(),
        "metadata": artifact.metadata,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # insertion order kept (entities' order is the features' order): no sort_keys
        text = json.dumps(document, indent=1) + "\n"  # NaN: a missing history default
        for name, data in [(_DOCUMENT, text.encode()), *sorted(files.items())]:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def deserialize(data: bytes) -> ModelArtifact:
    """An artifact from ``serialize``'s bytes; ValueError (or KeyError) if they are not one."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(files.pop(_DOCUMENT))
    if document.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"it is format {document.get('format')!r}, not {ARTIFACT_FORMAT}")
    runtime = RUNTIMES.get(document["runtime"])
    if runtime is None:
        raise ValueError(f"unknown runtime {document['runtime']!r}")
    return ModelArtifact(
        kind=document["kind"],
        model=runtime.from_files(document["runtime_scalars"], files),
        feature_state=FeatureState.from_dict(document["feature_state"]),
        threshold=float(document["threshold"]),
        metadata=document["metadata"],
    )


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


def save_artifact(
    artifact: ModelArtifact,
    path: Path,
    manifest_path: Path,
    facts: Mapping[str, Any] | None = None,
) -> dict:
    """Atomically write the artifact and its manifest (in one directory); return the manifest.

    ``facts``: more for the manifest only (how the model was trained: the compute engine),
    which leaves the artifact's bytes as they are."""
    if Path(path).parent != Path(manifest_path).parent:
        raise ValueError(f"{path} and its manifest {manifest_path} must share a directory")
    data = serialize(artifact)
    manifest = build_manifest(data, artifact, path.name) | dict(facts or {})
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


def member(manifest_path: Path, manifest: Mapping[str, Any], key: str) -> Path:
    """The file the manifest names under ``key`` (``artifact``, ``profile``), beside it."""
    name = manifest.get(key)
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ArtifactError(f"manifest {manifest_path} names no {key} file (got {name!r})")
    return Path(manifest_path).parent / name


def load_artifact(manifest_path: Path) -> tuple[ModelArtifact, dict]:
    """Load the artifact a manifest names (beside it) and verify it against the manifest.

    Raises:
        ArtifactError: naming the file and the problem (missing file, hash mismatch, version
            mismatch, corrupt content).
    """
    manifest = read_manifest(manifest_path)
    path = member(manifest_path, manifest, "artifact")
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
        artifact = deserialize(data)
    except Exception as exc:  # any failure to read it back means a corrupt file
        raise ArtifactError(f"model artifact {path} is corrupt: {exc!r}") from None
    return artifact, manifest


def read_profile(manifest_path: Path, manifest: Mapping[str, Any] | None = None) -> bytes:
    """The reference profile a promoted manifest names, verified against its sha256."""
    manifest = read_manifest(manifest_path) if manifest is None else manifest
    path = member(manifest_path, manifest, "profile")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"reference profile not found: {path}") from None
    if sha256_bytes(data) != manifest.get("profile_sha256"):
        raise ArtifactError(
            f"reference profile {path} does not match manifest {manifest_path} "
            f"(profile_sha256 {manifest.get('profile_sha256')!r})"
        )
    return data


def publish(directory: Path, artifact: bytes, manifest: Mapping[str, Any], profile: bytes) -> dict:
    """Promote a verified set into ``directory`` atomically (see the module docstring).

    ``manifest`` is the artifact's; the manifest written names the artifact and profile
    files and records the profile's sha256. Files of earlier sets are removed afterwards.
    Returns the manifest written.
    """
    if sha256_bytes(artifact) != manifest["sha256"]:
        raise ArtifactError("the artifact bytes do not match the manifest's sha256")
    directory = Path(directory)
    version = str(manifest["sha256"])[:12]
    names = {
        "artifact": f"fraud_model-{version}.zip",
        "profile": f"reference_profile-{version}.json",
    }
    written = dict(manifest, **names, profile_sha256=sha256_bytes(profile))
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / names["artifact"], artifact)
    atomic_write_bytes(directory / names["profile"], profile)
    atomic_write_bytes(directory / MANIFEST, dump_json(written))  # the switch
    keep = {MANIFEST, *names.values()}
    for path in directory.iterdir():  # earlier sets (and the pre-format-6 fixed names)
        if path.name.startswith(("fraud_model", "reference_profile")) and path.name not in keep:
            path.unlink()
    return written
