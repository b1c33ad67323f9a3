"""Ollama errors: ``{"error": "message"}`` with the HTTP status carrying the kind (there is no type field)."""

from __future__ import annotations

from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error

__all__ = ["error_from_body", "render_error", "render_stream_error"]


def render_error(err: common_pb2.Error) -> bytes:
    return jsonx.dumps({"error": err.message})


def render_stream_error(err: common_pb2.Error) -> bytes:
    """Ollama's mid-stream error: one NDJSON line ``{"error": "message"}``."""
    return jsonx.dumps({"error": err.message}) + b"\n"


def error_from_body(doc: Any, http_status: int = 0) -> common_pb2.Error:
    """The hub error for an Ollama error body. Without an HTTP status the message decides: Ollama's "model … not
    found" is a 404, anything else a 502 (the upstream failed)."""
    body = doc.get("error") if isinstance(doc, dict) else doc
    if isinstance(body, dict):
        body = body.get("message")
    message = str(body or "upstream error")
    status = http_status if 400 <= http_status <= 599 else (404 if "not found" in message.lower() else 502)
    return hub_error(status, message)
