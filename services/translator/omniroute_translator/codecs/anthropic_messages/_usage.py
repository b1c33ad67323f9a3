"""Anthropic usage and stop reasons ↔ the hub's (OpenAI) vocabulary, shared by responses and streams.

Anthropic's ``input_tokens`` excludes the tokens read from or written to the prompt cache; the hub's
``prompt_tokens`` includes both (as OpenAI's does). So ``prompt_tokens = input + cache_read + cache_creation``,
``cached_tokens = cache_read``, ``cache_write_tokens = cache_creation``, and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FINISH_BY_STOP", "STOP_BY_FINISH", "usage_from_hub", "usage_to_hub"]

FINISH_BY_STOP: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_BY_FINISH: Mapping[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_to_hub(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic usage (``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
    ``cache_creation_input_tokens``, ``output_tokens_details.thinking_tokens``) as hub usage."""
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_creation = _int(usage.get("cache_creation_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + cache_read + cache_creation
    completion = _int(usage.get("output_tokens"))
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cache_read or cache_creation:
        out["prompt_tokens_details"] = {"cached_tokens": cache_read, "cache_write_tokens": cache_creation}
    details = usage.get("output_tokens_details")
    thinking = _int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    if thinking:
        out["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return out


def usage_from_hub(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """Hub usage as Anthropic usage. ``input_tokens`` is the prompt minus cached and cache-written tokens
    (never negative); the cache fields are always present, as Anthropic sends them."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cache_read = _int(details.get("cached_tokens"))
    cache_creation = _int(details.get("cache_write_tokens"))
    return {
        "input_tokens": max(_int(usage.get("prompt_tokens")) - cache_read - cache_creation, 0),
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "output_tokens": _int(usage.get("completion_tokens")),
    }
