"""Shared tables of the Responses codec: usage, status ↔ finish reason, and small typed accessors.

Responses usage is ``{input_tokens, input_tokens_details {cached_tokens}, output_tokens,
output_tokens_details {reasoning_tokens}, total_tokens}``; like the hub's, ``input_tokens`` includes cached tokens
and ``output_tokens`` includes reasoning tokens, so the mapping is a renaming.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "INCOMPLETE_BY_FINISH",
    "finish_reason",
    "integer",
    "obj",
    "text",
    "usage_from_hub",
    "usage_to_hub",
]

# hub finish reasons that make a response `incomplete`, with the reason Responses reports
INCOMPLETE_BY_FINISH: Mapping[str, str] = {"length": "max_output_tokens", "content_filter": "content_filter"}
_FINISH_BY_INCOMPLETE: Mapping[str, str] = {"max_output_tokens": "length", "content_filter": "content_filter"}


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty dict (absent and malformed fields read the same)."""
    return value if isinstance(value, dict) else {}


def integer(value: Any) -> int:
    """An integer count, or 0 (``bool`` is an ``int`` subclass and is not a count)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def finish_reason(status: Any, incomplete_details: Any, called: bool) -> str:
    """The hub finish reason of a response's ``status``: ``incomplete`` maps through its reason
    (max_output_tokens → length, content_filter → content_filter, other → length); otherwise ``tool_calls`` when
    the output holds a function call, else ``stop``."""
    if status == "incomplete":
        return _FINISH_BY_INCOMPLETE.get(text(obj(incomplete_details).get("reason")), "length")
    return "tool_calls" if called else "stop"


def usage_to_hub(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Responses usage as hub usage (``cache_write_tokens`` kept when a provider reports it)."""
    prompt = integer(usage.get("input_tokens"))
    completion = integer(usage.get("output_tokens"))
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": integer(usage.get("total_tokens")) or prompt + completion,
    }
    input_details = obj(usage.get("input_tokens_details"))
    cached, written = integer(input_details.get("cached_tokens")), integer(input_details.get("cache_write_tokens"))
    if cached or written:
        out["prompt_tokens_details"] = {"cached_tokens": cached, **({"cache_write_tokens": written} if written else {})}
    reasoning = integer(obj(usage.get("output_tokens_details")).get("reasoning_tokens"))
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def usage_from_hub(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Hub usage as Responses usage, every field present (as OpenAI sends it)."""
    usage = usage or {}
    prompt = integer(usage.get("prompt_tokens"))
    completion = integer(usage.get("completion_tokens"))
    prompt_details = obj(usage.get("prompt_tokens_details"))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": integer(prompt_details.get("cached_tokens")),
            "cache_write_tokens": integer(prompt_details.get("cache_write_tokens")),
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": integer(obj(usage.get("completion_tokens_details")).get("reasoning_tokens"))
        },
        "total_tokens": integer(usage.get("total_tokens")) or prompt + completion,
    }
