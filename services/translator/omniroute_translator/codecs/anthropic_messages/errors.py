"""Anthropic error envelopes ↔ hub errors.

Anthropic's body is ``{"type": "error", "error": {"type", "message"}}`` (plus an optional ``request_id``); inside
a stream the same document is an ``event: error`` SSE event. Anthropic's error types are a closed set, so a hub
error is rendered with its own type when Anthropic has it, else with the type Anthropic uses for its status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.sse import format_event

__all__ = ["error_from_envelope", "render_error", "render_stream_error"]

# The closed set of `error.type` values of the official SDK's ErrorResponse, with the status each one is sent with
# (529 is Anthropic's "overloaded"; 504 its gateway timeout).
_STATUS_BY_TYPE: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_TYPE_BY_STATUS: Mapping[int, str] = {status: type_ for type_, status in _STATUS_BY_TYPE.items()}


def anthropic_type(err: common_pb2.Error) -> str:
    """The Anthropic error type for a hub error: its own type when Anthropic has it, else by status
    (503 is ``overloaded_error``, other 4xx ``invalid_request_error``, other 5xx ``api_error``)."""
    if err.type in _STATUS_BY_TYPE:
        return err.type
    if err.status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[err.status]
    if err.status == 503:
        return "overloaded_error"
    if 400 <= err.status < 500:
        return "invalid_request_error"
    return "api_error"


def _envelope(err: common_pb2.Error) -> bytes:
    return jsonx.dumps({"type": "error", "error": {"type": anthropic_type(err), "message": err.message}})


def render_error(err: common_pb2.Error) -> bytes:
    """``{"type": "error", "error": {"type", "message"}}``."""
    return _envelope(err)


def render_stream_error(err: common_pb2.Error) -> bytes:
    """The mid-stream error event: ``event: error`` carrying the same envelope."""
    return format_event(_envelope(err), "error")


def error_from_envelope(doc: Mapping[str, Any], status: int = 0) -> common_pb2.Error:
    """The hub error for an Anthropic error document. ``status`` is the HTTP status when known; otherwise it comes
    from the error type (an unknown type is a 502: the upstream failed). The type is kept as Anthropic named it."""
    raw = doc.get("error")
    body: dict[str, Any] = {"message": raw} if isinstance(raw, str) else raw if isinstance(raw, dict) else {}
    type_ = body["type"] if isinstance(body.get("type"), str) else ""
    if not 400 <= status <= 599:
        status = _STATUS_BY_TYPE.get(type_, 502)
    message = body.get("message")
    return hub_error(status, message if isinstance(message, str) and message else "upstream error", type_=type_)
