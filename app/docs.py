"""``GET /docs``: the interactive API documentation (Swagger UI) for ``/openapi.json``.

The Swagger UI files come from the ``swagger-ui-bundle`` package (pinned in
requirements-serve.txt, so the image has them): nothing is fetched from a CDN, and the page
works offline. The assets sit under a path that carries Swagger UI's version, so they can be
cached for a year (``immutable``); the page itself and its small start script are revalidated
on every load (they name the assets and the document).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory, url_for

docs = Blueprint("docs", __name__)

#: The files the page loads (the source maps too, for a browser's developer tools).
ASSETS = frozenset(
    {
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.js.map",
        "swagger-ui.css",
        "swagger-ui.css.map",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }
)
YEAR_S = 365 * 24 * 3600
#: Only this origin's scripts, styles and the document; Swagger UI styles inline, draws data:
#: images, and its "Try it out" calls this service.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fraud scoring service: API</title>
<link rel="stylesheet" href="{css}">
<link rel="icon" type="image/png" href="{icon}" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: %s,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


def asset_dir() -> Path:
    """The directory of the packaged Swagger UI files."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def swagger_ui_version() -> str:
    """Swagger UI's version, from the packaged directory's name (``swagger-ui-4.15.5``)."""
    return asset_dir().name.removeprefix("swagger-ui-")


def _revalidated(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@docs.get("/docs")
def page() -> Response:
    """The Swagger UI page for this service's ``/openapi.json``."""
    version = swagger_ui_version()

    def asset(name: str) -> str:
        return url_for("docs.asset", version=version, name=name)

    html = PAGE.format(
        css=asset("swagger-ui.css"),
        icon=asset("favicon-32x32.png"),
        bundle=asset("swagger-ui-bundle.js"),
        init=url_for("docs.init_script"),
    )
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CSP
    return _revalidated(response)


@docs.get("/docs/init.js")
def init_script() -> Response:
    """Starts Swagger UI on the API document (a file, so the page's CSP needs no inline script)."""
    url = url_for("fraud.openapi")
    script = INIT % f'"{url}"'
    return _revalidated(Response(script, content_type="text/javascript; charset=utf-8"))


@docs.get("/docs/assets/<version>/<name>")
def asset(version: str, name: str) -> Response:
    """A packaged Swagger UI file; 404 for any other name or another version."""
    if version != swagger_ui_version() or name not in ASSETS:
        abort(404)
    response = send_from_directory(asset_dir(), name, max_age=YEAR_S, conditional=True)
    response.headers["Cache-Control"] = f"public, max-age={YEAR_S}, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
