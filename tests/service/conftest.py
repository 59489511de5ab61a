"""Service tests serve the tiny model the pipeline's stages make, never the committed one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tiny_model import TinyModel


@pytest.fixture(scope="module", autouse=True)
def serve_tiny_model(
    tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TinyModel]:
    """MODEL_DIR and FEATURES_PATH point at the tiny model for the whole module, so
    ``create_app()`` and a real gunicorn (which inherits the environment) serve it, with an
    embedded feature store of the module's own (never the checkout's data/online/)."""
    store = tmp_path_factory.mktemp("store") / "features.db"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in tiny_model.env().items():
            patch.setenv(key, value)
        patch.setenv("FEATURE_STORE_URL", f"sqlite:///{store}")
        yield tiny_model
