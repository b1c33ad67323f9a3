"""What one attempt did and what the fallback loop does next.

Fallback rules (decided here, in one table):

- **retry** the same target (up to ``maxRetries``, then move on): 408, 429, every 5xx, timeouts, connection
  errors, and a stream that breaks before its first byte reached the client. These also count against the
  target's breaker (429 cools the connection instead).
- **next** target at once, without retrying this one: 401, 403 (this account's credentials), 404 (this provider
  lacks the model), any other 4xx not listed below, and a request the target cannot be prepared for.
- **stop** at once, with this attempt's answer: 400, 413, 422 (the request itself is malformed or too large;
  it would fail anywhere), and the client having gone (cancellation propagates).

Two refusals of our own go to the **next** target without touching breakers or cooldowns, since the provider did
nothing wrong: the provider's concurrency queue is full (503 with ``Retry-After``: :class:`UpstreamBusy`), and its
address is link-local or a cloud metadata endpoint (502: :class:`UpstreamBlocked`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from omniroute.v1 import common_pb2, executor_pb2
from omniroute_core.errors import hub_error
from omniroute_executor.upstream import UpstreamBlocked, UpstreamBusy, UpstreamTimeout

__all__ = [
    "STOP_STATUSES",
    "Attempt",
    "Kind",
    "Outcome",
    "TransportFailure",
    "classify",
    "retry_after_ms",
    "transport_failure",
]

STOP_STATUSES = frozenset({400, 413, 422})
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|h|m|s))")


class Kind(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    NEXT = "next"
    STOP = "stop"


def classify(status: int) -> Kind:
    """The loop's move after an HTTP status (connection errors and timeouts are RETRY by their callers)."""
    if status < 400:
        return Kind.OK
    if status in STOP_STATUSES:
        return Kind.STOP
    if status in {408, 429} or status >= 500:
        return Kind.RETRY
    return Kind.NEXT


def retry_after_ms(headers: Mapping[str, str]) -> int:
    """How long the provider asked to wait: ``Retry-After`` (seconds), else the earliest ``x-ratelimit-reset*``
    (seconds, or Go-style durations like ``6m0s`` / ``20ms`` as OpenAI sends them). 0 when none parse."""
    value = headers.get("retry-after", "").strip()
    if value:
        try:
            return max(0, int(float(value) * 1000))
        except ValueError:
            pass  # an HTTP date: rare from providers; fall through to the rate-limit headers
    waits = [
        ms
        for name in ("x-ratelimit-reset", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        if (ms := _duration_ms(headers.get(name, ""))) > 0
    ]
    return min(waits, default=0)


def _duration_ms(value: str) -> int:
    value = value.strip()
    if not value:
        return 0
    try:
        return int(float(value) * 1000)
    except ValueError:
        pass
    total = 0.0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for number, unit in _DURATION.findall(value):
        total += float(number) * scale[unit]
    return int(total * 1000)


@dataclass(slots=True)
class Attempt:
    """What one attempt did, for its usage event."""

    started: float
    number: int = 1
    combo: str = ""
    provider: str = ""
    connection_id: str = ""
    model: str = ""
    status: int = 0
    error_type: str = ""
    ttft_ms: int = 0
    usage: common_pb2.Usage = field(default_factory=common_pb2.Usage)


@dataclass(slots=True)
class Outcome:
    """How an attempt ended. ``reply`` is what the client gets if this is the last word."""

    kind: Kind
    reply: executor_pb2.ExecuteReply
    retry_after_ms: int = 0
    rate_limited: bool = False
    counts_as_failure: bool = False


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """How an attempt that got no HTTP status ends: the error the client would see, the loop's move, whether it
    counts against the target's breaker, the wait to advertise, and the usage event's ``error_type``."""

    error: common_pb2.Error
    kind: Kind
    counts_as_failure: bool
    retry_after_ms: int = 0
    error_type: str = ""


def transport_failure(exc: BaseException) -> TransportFailure:
    """The outcome of a :class:`~omniroute_executor.upstream.UpstreamError` (or a per-target ``TimeoutError``)."""
    if isinstance(exc, UpstreamBusy):
        err = hub_error(503, str(exc), code="upstream_busy", retry_after_ms=exc.retry_after_ms)
        return TransportFailure(err, Kind.NEXT, False, exc.retry_after_ms, "upstream_busy")
    if isinstance(exc, UpstreamBlocked):
        err = hub_error(502, f"provider address refused: {exc}", code="address_refused")
        return TransportFailure(err, Kind.NEXT, False, 0, "address_refused")
    if isinstance(exc, TimeoutError | UpstreamTimeout):
        return TransportFailure(hub_error(504, f"provider timed out: {exc or 'per-target timeout'}"), Kind.RETRY, True)
    return TransportFailure(hub_error(502, f"provider unreachable: {exc}"), Kind.RETRY, True)
