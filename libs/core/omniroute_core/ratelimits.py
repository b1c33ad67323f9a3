"""What providers say about an account's rate limits, as one JSON record per connection in Redis.

The executor records the rate-limit headers of every provider response per connection (coalesced, written in the
background: ``omniroute_executor.resilience.ratelimits``); the dashboard serves them at ``/api/rate-limits``. The key
name, the record format and the header parsing live here so both read the same thing.

Headers understood (names case-insensitive):

- OpenAI and most OpenAI-compatible providers: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``; resets
  are durations (``1s``, ``6m0s``, ``20ms``) or seconds;
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``; resets
  are RFC 3339 times;
- generic single-window headers: ``x-ratelimit-{limit,remaining,reset}`` (OpenRouter: reset in epoch ms) and the
  IETF draft's ``ratelimit-{limit,remaining,reset}`` (reset in seconds), read as the ``requests`` window;
- ``retry-after``: seconds or an HTTP date.

Record: ``{"observedAt": ms, "status": n, "windows": {"requests"|"tokens"|"inputTokens"|"outputTokens":
{"limit", "remaining", "resetAt"}}, "retryAfterMs": n?}`` (times in epoch milliseconds, absent values null).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "RATE_LIMIT_PREFIX",
    "RATE_LIMIT_TTL_S",
    "duration_ms",
    "parse_rate_limits",
    "rate_limit_key",
]

RATE_LIMIT_PREFIX = "omniroute:ratelimit"
# a record older than this tells nothing about the account any more; Redis forgets it
RATE_LIMIT_TTL_S = 3600

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# (header stem, window name) for the families with one header per window and field
_OPENAI = (("requests", "requests"), ("tokens", "tokens"))
_ANTHROPIC = (
    ("requests", "requests"),
    ("tokens", "tokens"),
    ("input-tokens", "inputTokens"),
    ("output-tokens", "outputTokens"),
)
_MARKERS = ("x-ratelimit", "anthropic-ratelimit", "ratelimit-", "retry-after")


def rate_limit_key(connection_id: str, prefix: str = RATE_LIMIT_PREFIX) -> str:
    return f"{prefix}:{connection_id}"


def duration_ms(value: str) -> int:
    """``6m0s`` / ``20ms`` / ``1.5`` (seconds) in milliseconds; 0 when it does not parse."""
    value = value.strip()
    if not value:
        return 0
    try:
        return max(0, int(float(value) * 1000))
    except ValueError:
        pass
    return int(sum(float(n) * _SCALE[unit] for n, unit in _DURATION.findall(value)) * 1000)


def parse_rate_limits(headers: Iterable[tuple[str, str]], status: int, now_ms: int) -> dict[str, Any] | None:
    """The record for one response (``headers`` as name/value pairs), or None when it says nothing about limits
    (no rate-limit header, no ``retry-after`` and not a 429)."""
    found = {name.lower(): value.strip() for name, value in headers if name.lower().startswith(_MARKERS)}
    windows: dict[str, dict[str, int | None]] = {}
    for stem, window in _OPENAI:
        _window(
            windows,
            window,
            found.get(f"x-ratelimit-limit-{stem}"),
            found.get(f"x-ratelimit-remaining-{stem}"),
            _relative(found.get(f"x-ratelimit-reset-{stem}"), now_ms),
        )
    for stem, window in _ANTHROPIC:
        _window(
            windows,
            window,
            found.get(f"anthropic-ratelimit-{stem}-limit"),
            found.get(f"anthropic-ratelimit-{stem}-remaining"),
            _timestamp(found.get(f"anthropic-ratelimit-{stem}-reset")),
        )
    for family in ("x-ratelimit", "ratelimit"):
        if "requests" not in windows:
            _window(
                windows,
                "requests",
                found.get(f"{family}-limit"),
                found.get(f"{family}-remaining"),
                _epoch_or_relative(found.get(f"{family}-reset"), now_ms),
            )
    retry_after = _retry_after_ms(found.get("retry-after"), now_ms)
    if not windows and not retry_after and status != 429:
        return None
    record: dict[str, Any] = {"observedAt": now_ms, "status": status, "windows": windows}
    if retry_after:
        record["retryAfterMs"] = retry_after
    return record


def _window(
    windows: dict[str, dict[str, int | None]], name: str, limit: str | None, remaining: str | None, reset: int | None
) -> None:
    values = {"limit": _int(limit), "remaining": _int(remaining), "resetAt": reset}
    if any(v is not None for v in values.values()):
        windows[name] = values


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _relative(value: str | None, now_ms: int) -> int | None:
    return None if value is None else now_ms + duration_ms(value)


def _timestamp(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None


def _epoch_or_relative(value: str | None, now_ms: int) -> int | None:
    """A reset that may be epoch milliseconds (OpenRouter), epoch seconds, or seconds from now."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return _timestamp(value) or _relative(value, now_ms)
    if number > 1e12:
        return int(number)
    if number > 1e9:
        return int(number * 1000)
    return now_ms + int(number * 1000)


def _retry_after_ms(value: str | None, now_ms: int) -> int:
    if not value:
        return 0
    try:
        return max(0, int(float(value) * 1000))
    except ValueError:
        pass
    try:
        return max(0, int(parsedate_to_datetime(value).timestamp() * 1000) - now_ms)
    except (TypeError, ValueError):
        return 0
