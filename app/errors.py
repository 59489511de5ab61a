"""JSON errors: one body shape for every error the service answers, and Flask's handlers."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A client error answered as JSON with a status code and optional field details."""

    def __init__(
        self, status: int, error: str, message: str, details: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details


def error_payload(error: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    """The body of every error response: ``error``, ``message`` and, for 422, ``details``."""
    body: dict[str, Any] = {"error": error, "message": message}
    if details is not None:
        body["details"] = details
    return body


#: The body of an unexpected failure (the exception itself is only logged).
INTERNAL_ERROR = error_payload("internal_error", "internal server error")
#: The Open Inference Protocol's paths (``app.v2``): their HTTP errors (routing's 404 and 405
#: included, which never reach a blueprint's handlers) are ``{"error": message}``.
V2_PREFIX = "/v2/"


def register_error_handlers(app: Flask) -> None:
    """JSON errors on Flask's routes: client errors keep their status, bugs become a logged 500."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        return jsonify(error_payload(exc.error, exc.message, exc.details)), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name or "error"
        v2 = f"{request.path}/".startswith(V2_PREFIX)
        response = jsonify({"error": message} if v2 else error_payload(name, message))
        if status == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception) -> tuple[Response, int]:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(INTERNAL_ERROR), 500
