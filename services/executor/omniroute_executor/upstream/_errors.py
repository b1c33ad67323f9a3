"""What can go wrong talking to a provider, as the engine's fallback rules distinguish it."""

from __future__ import annotations

__all__ = ["UpstreamBlocked", "UpstreamBusy", "UpstreamConnectError", "UpstreamError", "UpstreamTimeout"]


class UpstreamError(Exception):
    """The provider could not be reached or broke off the response."""


class UpstreamConnectError(UpstreamError):
    """Connection refused, reset or DNS failure before any response (→ 502)."""


class UpstreamBlocked(UpstreamConnectError):
    """The address is refused by the link-local / cloud metadata guard (:mod:`omniroute_core.netguard`); no packet
    was sent. A configuration problem of this target, not a provider failure (→ 502, next target)."""


class UpstreamTimeout(UpstreamError):
    """No connection or no bytes within the configured time (→ 504)."""


class UpstreamBusy(UpstreamError):
    """The provider's concurrency queue is full, or the wait for a slot ran out; nothing was sent. Our own limit,
    not the provider's failure (→ 503 with ``Retry-After``, next target, no breaker or cooldown)."""

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms
