"""OpenAI error envelopes: rendering hub errors, and reading the errors OpenAI-compatible providers send.

The hub's error vocabulary *is* OpenAI's, so rendering is :func:`omniroute_core.errors.hub_error_body`.
Reading is lenient: compatible providers send ``{"error": {...}}``, ``{"error": "text"}`` or
``{"message": ...}`` shapes, with or without an HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core.errors import hub_error, hub_error_body
from omniroute_translator.codecs.sse import format_event

__all__ = ["error_from_envelope", "render_error", "render_stream_error"]

# When a body names no status (a stream event, a 200 carrying an error) its type or code says what it was.
_STATUS_BY_TYPE: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "tokens": 429,
    "requests": 429,
    "context_length_exceeded": 400,
    "server_error": 502,
    "service_unavailable": 503,
    "overloaded_error": 503,
    "timeout_error": 504,
}


def render_error(err: common_pb2.Error) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return hub_error_body(err)


def render_stream_error(err: common_pb2.Error) -> bytes:
    """OpenAI's mid-stream error: an SSE ``data:`` event carrying the same envelope (no ``[DONE]`` follows)."""
    return format_event(hub_error_body(err))


def error_from_envelope(doc: Mapping[str, Any], status: int = 0) -> common_pb2.Error:
    """The hub error for an OpenAI-style error document. ``status`` is the HTTP status when known; otherwise it
    is inferred from the error's type or code, and an unknown error is a 502 (the upstream failed)."""
    body: Any = doc.get("error", doc)
    if isinstance(body, str):
        body = {"message": body}
    if not isinstance(body, dict):
        body = {}
    type_ = _text(body.get("type"))
    code = _text(body.get("code"))
    if not status:
        status = _int(body.get("status")) or _int(doc.get("status")) or _int(body.get("code"))
    if not 400 <= status <= 599:
        status = _STATUS_BY_TYPE.get(type_) or _STATUS_BY_TYPE.get(code) or 502
    message = _text(body.get("message")) or _text(doc.get("message")) or "upstream error"
    return hub_error(status, message, type_=type_, code="" if code.isdigit() else code, param=_text(body.get("param")))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0
