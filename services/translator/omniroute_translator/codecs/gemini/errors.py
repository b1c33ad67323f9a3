"""Gemini (Google API) error envelopes: ``{"error": {"code": <HTTP status>, "message", "status": <gRPC code>}}``.

Rendering maps the hub status onto Google's canonical codes; reading accepts the envelope, a list of them (as
Gemini's non-SSE stream sends), or anything else as a 502.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.sse import format_event

__all__ = ["STATUS_BY_CODE", "error_body", "error_from_envelope", "render_error", "render_stream_error"]

STATUS_BY_CODE: Mapping[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# Google's status names back to HTTP, for an envelope whose `code` is missing
_CODE_BY_STATUS: Mapping[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def error_body(err: common_pb2.Error) -> dict[str, Any]:
    """The Google envelope for a hub error (``status`` INTERNAL for an unlisted 5xx, INVALID_ARGUMENT else)."""
    code = err.status or 500
    status = STATUS_BY_CODE.get(code) or ("INTERNAL" if code >= 500 else "INVALID_ARGUMENT")
    return {"error": {"code": code, "message": err.message, "status": status}}


def render_error(err: common_pb2.Error) -> bytes:
    return jsonx.dumps(error_body(err))


def render_stream_error(err: common_pb2.Error) -> bytes:
    """Gemini's mid-stream error: the same envelope as one SSE event (CRLF-terminated like Gemini's events)."""
    return format_event(jsonx.dumps(error_body(err))).replace(b"\n\n", b"\r\n\r\n")


def error_from_envelope(doc: Any, http_status: int = 0) -> common_pb2.Error:
    """The hub error for a Google error document (a dict or a one-element list of them). The HTTP status is
    ``error.code``, else ``http_status``, else derived from ``error.status``, else 502."""
    if isinstance(doc, list) and doc:
        doc = doc[0]
    body = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(body, dict):
        body = {"message": body} if isinstance(body, str) else {}
    status_name = str(body.get("status") or "")
    code = body.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else 0
    if not 400 <= status <= 599:
        status = http_status if 400 <= http_status <= 599 else _CODE_BY_STATUS.get(status_name, 502)
    message = str(body.get("message") or "upstream error")
    return hub_error(status, message, code=status_name.lower())
