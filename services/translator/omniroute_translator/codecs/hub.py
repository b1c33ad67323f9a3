"""Helpers over hub values that every format shares: usage, stream error chunks, content detection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import HubChunk

__all__ = [
    "error_chunk",
    "error_from_chunk",
    "has_content",
    "is_error_chunk",
    "usage_to_hub",
    "usage_to_proto",
]

_CONTENT_KEYS = ("content", "reasoning_content", "refusal", "tool_calls", "function_call")


def _int(value: Any) -> int:
    # bool is an int subclass; a provider sending true/false as a count is treated as absent
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_to_proto(usage: Mapping[str, Any] | None) -> common_pb2.Usage:
    """Hub usage (OpenAI shape) into the proto. ``total_tokens`` defaults to input + output when absent.

    ``input_tokens`` includes cached and cache-creation tokens, as OpenAI's ``prompt_tokens`` does.
    """
    if not usage:
        return common_pb2.Usage()
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    input_tokens = _int(usage.get("prompt_tokens"))
    output_tokens = _int(usage.get("completion_tokens"))
    return common_pb2.Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=_int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0,
        cache_creation_tokens=(
            _int(prompt_details.get("cache_write_tokens")) if isinstance(prompt_details, dict) else 0
        ),
        reasoning_tokens=(
            _int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
        ),
        total_tokens=_int(usage.get("total_tokens")) or input_tokens + output_tokens,
    )


def usage_to_hub(usage: common_pb2.Usage) -> dict[str, Any]:
    """The proto back into hub usage (OpenAI shape), for formats whose native usage was decoded to the proto."""
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_input_tokens or usage.cache_creation_tokens:
        details: dict[str, int] = {"cached_tokens": usage.cached_input_tokens}
        if usage.cache_creation_tokens:
            details["cache_write_tokens"] = usage.cache_creation_tokens
        out["prompt_tokens_details"] = details
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def error_chunk(err: common_pb2.Error) -> HubChunk:
    """A provider error inside a stream, as a hub chunk (the OpenAI envelope plus the HTTP status)."""
    return {
        "error": {
            "message": err.message,
            "type": err.type,
            "code": err.code or None,
            "param": err.param or None,
            "status": err.status,
        }
    }


def is_error_chunk(chunk: Mapping[str, Any]) -> bool:
    return isinstance(chunk.get("error"), dict)


def error_from_chunk(chunk: Mapping[str, Any]) -> common_pb2.Error:
    """The hub error carried by :func:`error_chunk` (status 502 when the chunk does not name one)."""
    body = chunk.get("error")
    if not isinstance(body, dict):
        return hub_error(502, "upstream stream failed")
    status = _int(body.get("status")) or 502
    return hub_error(
        status,
        str(body.get("message") or "upstream stream failed"),
        type_=str(body.get("type") or ""),
        code=str(body.get("code") or ""),
        param=str(body.get("param") or ""),
    )


def has_content(chunk: Mapping[str, Any]) -> bool:
    """Whether a hub chunk carries something the client will see as output: text, reasoning, a refusal or a
    tool call. A role-only delta, a finish reason or a usage chunk is not content."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and any(delta.get(key) for key in _CONTENT_KEYS):
            return True
    return False
