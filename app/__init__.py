"""Flask app factory for the fraud scoring service; nothing is loaded at import time.

Serve with ``gunicorn -c app/gunicorn.conf.py "app:create_app()"``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from flask.json.provider import DefaultJSONProvider

logger = logging.getLogger(__name__)


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON through orjson: ~10x faster on batch responses; keys keep their order."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=self.default).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(
            orjson.dumps(obj, default=self.default), mimetype=self.mimetype
        )


@dataclass
class ServiceState:
    """What the blueprint needs at request time, stored in ``app.extensions["fraud"]``."""

    scorer: Any
    validate: Any  # app.validation.TransactionValidator; its .fields drive the API document
    metrics: Any
    manifest: dict[str, Any]
    started: float
    history: Any  # app.history.HistorySource: the request's history or the online store's
    store: Any  # fraud.store.OnlineStore, or None (FEATURE_STORE_URL=none)


def check_features_file(path: Path, feature_names: list[str]) -> None:
    """Refuse a features file whose "features" list differs from the artifact's."""
    from fraud.runtime.artifact import ArtifactError

    try:
        features = json.loads(Path(path).read_text()).get("features")
    except FileNotFoundError:
        raise ArtifactError(f"features file not found: {path}") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"features file {path} is not a JSON object: {exc}") from None
    if features != feature_names:
        raise ArtifactError(
            f"features file {path} lists {features!r:.200} but the model artifact expects "
            f"{feature_names!r:.200}"
        )


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: load and verify the model once, register the blueprint and handlers.

    Raises:
        ArtifactError: the model, manifest or features file is missing, corrupt, tampered
            with or incompatible (the message names the file), so a worker fails to boot.
    """
    from app.api import bp
    from app.docs import docs
    from app.errors import register_error_handlers
    from app.feedback import init_feedback
    from app.history import HistorySource
    from app.keys import parse_api_keys
    from app.metrics import Metrics
    from app.monitoring import init_monitoring
    from app.predict import ScoringEndpoints
    from app.schemas import transaction_fields
    from app.settings import resolve, with_manifest
    from app.v2 import v2
    from app.validation import TransactionValidator
    from fraud.features.spec import categorical_inputs
    from fraud.runtime.artifact import MANIFEST, ArtifactError, load_artifact
    from fraud.runtime.scoring import RiskBands, Scorer

    settings = resolve(config)
    manifest_path = settings["MODEL_DIR"] / MANIFEST
    artifact, manifest = load_artifact(manifest_path)
    try:
        settings = with_manifest(settings, manifest)
    except ValueError as exc:
        raise ArtifactError(f"manifest {manifest_path}: {exc}") from None
    check_features_file(settings["FEATURES_PATH"], artifact.feature_names)
    api_keys = parse_api_keys(settings["API_KEYS"])
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.update(settings)
    state = artifact.feature_state
    scorer = Scorer(
        artifact,
        manifest,
        RiskBands(settings["RISK_MEDIUM"], settings["RISK_HIGH"]),
        settings["TOP_REASONS"],
    )
    store = _open_store(settings, state)
    metrics = Metrics()
    app.extensions["fraud"] = ServiceState(
        scorer=scorer,
        validate=TransactionValidator(
            transaction_fields(state.history_groups, categorical_inputs(state.inputs))
        ),
        metrics=metrics,
        manifest=manifest,
        started=time.time(),
        history=HistorySource(store, state.history_columns, metrics),
        store=store,
    )
    app.register_blueprint(bp)
    app.register_blueprint(docs)
    app.register_blueprint(v2)
    app.extensions["api_keys"] = api_keys  # the V2 infer route checks them too
    register_error_handlers(app)
    init_monitoring(app, manifest_path, manifest)
    init_feedback(app, store)
    app.wsgi_app = ScoringEndpoints(app, app.wsgi_app, api_keys)  # type: ignore[method-assign]
    logger.info(
        "loaded model %s (%s) from %s",
        scorer.version,
        artifact.kind,
        manifest_path.parent / manifest["artifact"],
    )
    logger.info(
        "history: %s", f"online store {store.name}" if store else "from requests only (no store)"
    )
    if api_keys:
        logger.info("scoring endpoints need an API key: %s", ", ".join(sorted(api_keys.values())))
    else:
        logger.warning(
            "no API_KEYS: /predict and /predict/batch are open to anyone who can reach them"
        )
    return app


def _open_store(settings: Mapping[str, Any], state: Any) -> Any:
    """The online store of FEATURE_STORE_URL for the model's features (opened lazily: a store
    that is down makes /ready and the scoring endpoints answer 503, it does not stop a boot);
    None for ``none`` or a model without history features."""
    from fraud.runtime.artifact import ArtifactError
    from fraud.store import OnlineStore, open_backend
    from fraud.store.online import OnlineFeatures

    url = settings["FEATURE_STORE_URL"].strip()
    if url.lower() == "none" or not state.history_columns:
        return None
    try:
        backend = open_backend(url)
    except ValueError as exc:
        raise ArtifactError(f"FEATURE_STORE_URL: {exc}") from None
    return OnlineStore(
        backend, OnlineFeatures(state, settings["FEATURE_STORE_MAX_LATENESS"] * 1000)
    )
