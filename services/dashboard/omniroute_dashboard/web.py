"""HTTP plumbing shared by the routers: JSON responses, the error envelope and request-body validation.

Every error leaves as ``{"error": {"message", "type", "param", "code"}}`` (the OpenAI envelope the edge and the
web UI already parse), with ``type`` derived from the status (``authentication_error`` for 401, ...).
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from omniroute_core import jsonx
from omniroute_core.errors import hub_error, hub_error_body

__all__ = ["ApiError", "install_error_handlers", "json_response", "parse_body"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """Raised by handlers and dependencies; rendered as the error envelope with ``status``."""

    def __init__(self, status: int, message: str, *, param: str = "", code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def json_response(body: Any, status: int = 200) -> Response:
    return Response(content=jsonx.dumps(body), status_code=status, media_type="application/json")


def error_response(status: int, message: str, *, param: str = "", code: str = "") -> Response:
    body = hub_error_body(hub_error(status, message, param=param, code=code))
    return Response(content=body, status_code=status, media_type="application/json")


async def parse_body(request: Request, model: type[M]) -> M:
    """The request body as ``model``. Raises ``ApiError(400)`` for an empty, malformed or non-object body and
    for a validation failure (the message names each offending field by its JSON name)."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "Request body must be a JSON object")
    try:
        doc = jsonx.loads(raw)
    except jsonx.JSONDecodeError as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from exc
    if not isinstance(doc, dict):
        raise ApiError(400, "Request body must be a JSON object")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise _validation_error(exc) from exc


def _validation_error(exc: ValidationError) -> ApiError:
    problems: list[str] = []
    first = ""
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"])
        first = first or where
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return ApiError(400, "Invalid request: " + "; ".join(problems), param=first)


def install_error_handlers(app: FastAPI) -> None:
    """Render ``ApiError``, Starlette's own HTTP errors (404 route, 405 method), FastAPI's validation errors and
    unexpected exceptions in the envelope."""

    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code)

    async def on_http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        response = error_response(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, f"Invalid request: {exc.errors()}")

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "Internal server error")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
