"""Responses errors: the body is OpenAI's envelope (the same as Chat's, so it is rendered and read by the Chat
codec's functions); in a stream the error is an ``event: error`` with ``{type: "error", code, message, param,
sequence_number}``, and a response that fails is a ``response.failed`` event whose ``response.error`` is
``{code, message}`` with a code from OpenAI's closed ``ResponseErrorCode`` set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.openai_chat.errors import error_from_envelope, render_error
from omniroute_translator.codecs.openai_responses._common import obj, text
from omniroute_translator.codecs.sse import format_event

__all__ = [
    "error_event",
    "error_from_envelope",
    "error_from_event",
    "render_error",
    "render_stream_error",
    "response_error",
]

_STATUS_BY_CODE: Mapping[str, int] = {
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "invalid_prompt": 400,
    "vector_store_timeout": 504,
}


def error_event(err: common_pb2.Error, sequence_number: int) -> dict[str, Any]:
    """The ``error`` stream event's payload for a hub error (``code`` is the error's code, else its type)."""
    return {
        "type": "error",
        "code": err.code or err.type or None,
        "message": err.message,
        "param": err.param or None,
        "sequence_number": sequence_number,
    }


def render_stream_error(err: common_pb2.Error) -> bytes:
    """``event: error`` with the error event payload (sequence number 0: it is the only event of its stream)."""
    return format_event(jsonx.dumps(error_event(err, 0)), "error")


def response_error(err: common_pb2.Error) -> dict[str, str]:
    """``Response.error``: the code must be one of OpenAI's ``ResponseErrorCode`` values, so a rate limit is
    ``rate_limit_exceeded``, a 400 with that code keeps it, and everything else is ``server_error``."""
    if err.status == 429:
        code = "rate_limit_exceeded"
    elif err.code in _STATUS_BY_CODE or err.code.startswith("invalid_") or err.code.startswith("image_"):
        code = err.code
    else:
        code = "server_error"
    return {"code": code, "message": err.message}


def error_from_event(doc: Mapping[str, Any]) -> common_pb2.Error:
    """The hub error of an ``error`` event (top-level ``code``/``message``/``param``, or an ``error`` envelope) or
    of a ``response.failed`` event (``response.error``). The status comes from the code, else 502."""
    if doc.get("type") == "response.failed":
        body = obj(obj(doc.get("response")).get("error"))
    elif isinstance(doc.get("error"), dict):
        return error_from_envelope(doc)
    else:
        body = dict(doc)
    code = text(body.get("code"))
    status = _STATUS_BY_CODE.get(code) or error_from_envelope({"error": {"code": code}}).status
    message = text(body.get("message")) or "upstream error"
    return hub_error(status, message, code=code, param=text(body.get("param")))
