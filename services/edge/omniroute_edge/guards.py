"""The per-key guards between authentication and the relay: model restrictions, budget, rate limits.

:meth:`Guards.admit` runs them cheapest first, so a refused request costs as little as possible and never
reaches the executor: the model patterns (in memory), the budget (the usage service, cached per key for a
couple of seconds) and the rate limits (one Redis script; only for keys that have limits, their own or the
global defaults of the ``rateLimit`` setting). A key with no restrictions, no budget and no limits pays a dict
lookup and, once per budget TTL, one gRPC call. Anonymous callers (keys not required) have nothing to check.

Redis or usage-service failures admit the request (logged and counted): these guards protect spend and
fairness, and must not turn an outage of a side store into an outage of the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from omniroute.v1 import common_pb2
from omniroute_core.snapshot import NO_LIMITS, ApiKey, ConfigSnapshot, RateLimits
from omniroute_edge.budget import BudgetGuard
from omniroute_edge.ratelimit import RateLimiter, estimate_tokens
from omniroute_edge.restrictions import model_refusal

__all__ = ["NOTHING", "Admission", "GuardMetrics", "Guards", "Refused", "default_limits", "with_headers"]

log = logging.getLogger(__name__)

Header = tuple[bytes, bytes]


class GuardMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.refusals = Counter(
            "omniroute_edge_guard_refusals", "Requests refused by a guard, by reason", ["reason"], registry=registry
        )
        self.rate_limit_failures = Counter(
            "omniroute_edge_rate_limit_failures",
            "Rate-limit checks Redis could not answer (the request was admitted: fail open)",
            registry=registry,
        )


class Refused(Exception):
    """A guard said no: reply with ``error`` (in the client's format) and ``headers``."""

    def __init__(self, error: common_pb2.Error, headers: list[Header] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = headers or []


@dataclass(slots=True)
class Admission:
    """An admitted request: ``headers`` go on its reply; ``release`` must be awaited when it ends."""

    headers: list[Header] = field(default_factory=list)
    release: Callable[[], Awaitable[None]] | None = None


NOTHING = Admission()


def default_limits(settings: Any) -> RateLimits:
    """The global per-key defaults: ``settings["rateLimit"]["defaults"]`` (``{"rpm", "tpm", "concurrent"}``)."""
    raw = settings.get("rateLimit") if isinstance(settings, dict) else None
    return RateLimits.parse(raw.get("defaults") if isinstance(raw, dict) else None)


class Guards:
    def __init__(self, limiter: RateLimiter | None, budget: BudgetGuard | None, metrics: GuardMetrics) -> None:
        self._limiter = limiter
        self._budget = budget
        self._metrics = metrics
        # derived once per snapshot, not per request
        self._snapshot: ConfigSnapshot | None = None
        self._defaults = NO_LIMITS

    def _defaults_for(self, snapshot: ConfigSnapshot) -> RateLimits:
        if snapshot is not self._snapshot:
            self._defaults = default_limits(snapshot.settings)
            self._snapshot = snapshot
        return self._defaults

    async def admit(
        self,
        snapshot: ConfigSnapshot,
        key: ApiKey | None,
        model: str,
        doc: dict[str, Any],
        body_size: int,
        max_tokens_paths: tuple[tuple[str, ...], ...],
        request_id: str,
    ) -> Admission:
        """Admit the request or raise :class:`Refused` (403 model, 429 budget, 429 rate limit)."""
        if key is None:
            return NOTHING
        error = model_refusal(key, model) if model else None  # a listing names no model
        if error is not None:
            self._metrics.refusals.labels("model").inc()
            raise Refused(error)
        if self._budget is not None:
            error = await self._budget.refusal(key.id)
            if error is not None:
                self._metrics.refusals.labels("budget").inc()
                # a budget does not come back by retrying: tell the SDKs (openai, anthropic) not to
                raise Refused(error, [(b"x-should-retry", b"false")])
        limits = key.rate_limits.over(self._defaults_for(snapshot))
        if self._limiter is None or not limits.any:
            return NOTHING
        limiter = self._limiter
        tokens = estimate_tokens(doc, body_size, max_tokens_paths)
        try:
            decision = await limiter.admit(key.id, limits, tokens, request_id)
        except RedisError:
            self._metrics.rate_limit_failures.inc()
            log.warning("rate-limit check failed; admitting the request (fail open)", exc_info=True)
            return NOTHING
        if decision.error is not None:
            self._metrics.refusals.labels(decision.error.code).inc()
            raise Refused(decision.error, decision.headers)
        if not decision.holds_slot:
            return Admission(decision.headers)

        async def release() -> None:
            try:
                await limiter.release(key.id)
            except RedisError:
                log.warning("could not free a concurrency slot; its TTL will", exc_info=True)

        return Admission(decision.headers, release)


def with_headers(send: Callable[[dict[str, Any]], Any], headers: list[Header]) -> Callable[[dict[str, Any]], Any]:
    """``send`` adding ``headers`` to the response start. Wrapped outside the replay recorder, so the rate-limit
    headers of this delivery are never stored with a cached or idempotent reply."""
    if not headers:
        return send

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *headers]}
        await send(message)

    return wrapped
