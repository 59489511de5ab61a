"""GET /docs: Swagger UI for /openapi.json from packaged assets, drawn in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.docs import ASSETS, swagger_ui_version
from tests.browser import open_page
from tests.service.test_server import Server, request


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def page_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_page_loads_only_this_services_files(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    links = page_assets(response.get_data(as_text=True))
    version = swagger_ui_version()
    assert f"/docs/assets/{version}/swagger-ui-bundle.js" in links
    assert f"/docs/assets/{version}/swagger-ui.css" in links
    assert "/docs/init.js" in links
    for link in links:  # no CDN: every file is served here, and is there
        assert link.startswith("/docs/"), link
        assert client.get(link).status_code == 200, link


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
def test_assets_have_their_types_and_are_cached_for_a_year(
    client: FlaskClient, name: str, content_type: str
) -> None:
    response = client.get(f"/docs/assets/{swagger_ui_version()}/{name}")
    assert response.status_code == 200
    assert content_type in response.content_type
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(response.get_data()) > 100
    etag = response.headers["ETag"]
    again = client.get(
        f"/docs/assets/{swagger_ui_version()}/{name}", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304


def test_the_start_script_points_at_the_api_document(client: FlaskClient) -> None:
    response = client.get("/docs/init.js")
    assert response.status_code == 200
    assert "javascript" in response.content_type
    assert 'url: "/openapi.json"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/docs/assets/0.0.1/swagger-ui-bundle.js",  # another version
        "/docs/assets/{v}/index.html",  # a packaged file not served
        "/docs/assets/{v}/..%2F__init__.py",
        "/docs/assets/{v}/swagger-initializer.js",
    ],
)
def test_other_files_are_not_found(client: FlaskClient, path: str) -> None:
    response = client.get(path.format(v=swagger_ui_version()))
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_every_served_asset_is_packaged() -> None:
    from app.docs import asset_dir

    assert all((asset_dir() / name).is_file() for name in ASSETS)


def test_the_api_document_lists_the_docs_page(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert set(paths["/docs"]["get"]["responses"]["200"]["content"]) == {"text/html"}


def test_swagger_ui_renders_the_operations_offline_in_chromium(tmp_path: Path) -> None:
    """A real headless Chromium with no network: the page draws every operation of the
    document (so the bundle, the start script and /openapi.json all loaded from the service)."""
    server = Server(tmp_path)
    try:
        server.wait_ready()
        document = request(f"{server.url}/openapi.json")[1]
        dom = open_page(f"{server.url}/docs", tmp_path / "profile", wait_ms=15000)
    finally:
        server.stop()
    assert 'class="swagger-ui' in dom
    assert "Fraud scoring service" in dom  # the document's title, fetched and drawn
    operations = re.findall(r'<div class="opblock opblock-(\w+)[^"]*" id="operations-', dom)
    paths = re.findall(r'data-path="([^"]+)"', dom)
    assert sorted(paths) == sorted(
        path for path, methods in document["paths"].items() for _ in methods
    )
    assert len(operations) == len(paths)
    assert {"/predict", "/predict/batch", "/docs"} <= set(paths)
    assert 'id="operations-default-post_predict"' in dom
