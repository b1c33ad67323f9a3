"""Budget admission: is this key over its spending budget? Asked of the usage service, cached briefly.

The usage service owns budgets and spend (``UsageService.CheckBudget``: one indexed read). The edge keeps each
key's answer for ``ttl_s`` (2 s by default), so a key costs at most one gRPC call per TTL per edge replica,
whether or not it has a budget, and concurrent requests of one key share a single in-flight call. The price of
the cache is overshoot: spend recorded after the answer was cached is seen up to ``ttl_s`` later (plus the usage
pipeline's own delay); across N replicas a key can overshoot by what it spends in that time on all of them.

The usage service announces on NATS (``omniroute.budget.state``) every key whose stored spend reached its limit and
every budget that changed; :meth:`BudgetGuard.invalidate` then drops that key's cached answer, so the next request
asks again. The cache bounds overshoot only when such a notice is lost (NATS core is at most once).

When the usage service cannot answer, the check **fails open** (the request is admitted, a warning is logged and
``omniroute_edge_budget_check_failures_total`` counts it) and that answer is cached like any other: a budget is
a cost control whose spend is still recorded (usage events queue in JetStream) and enforced again once the
service is back, whereas failing closed would turn an outage of the metering service into an outage of the
whole gateway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry, Counter

from omniroute.v1 import common_pb2, usage_pb2, usage_pb2_grpc
from omniroute_core.errors import hub_error
from omniroute_core.grpcx import call_metadata

__all__ = ["BudgetGuard", "BudgetMetrics"]

log = logging.getLogger(__name__)

# more keys than this and the cache is cleared: a bound on memory, not a tuning knob
_MAX_ENTRIES = 100_000


class BudgetMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter(
            "omniroute_edge_budget_check_failures",
            "Budget checks the usage service could not answer (the request was admitted: fail open)",
            registry=registry,
        )
        self.checks = Counter(
            "omniroute_edge_budget_checks", "CheckBudget calls made (cache misses)", registry=registry
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    at: float
    reply: usage_pb2.CheckBudgetReply | None  # None: the usage service did not answer (fail open)


class BudgetGuard:
    def __init__(
        self,
        usage: usage_pb2_grpc.UsageServiceAsyncStub,
        metrics: BudgetMetrics,
        *,
        ttl_s: float = 2.0,
        timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._usage = usage
        self._metrics = metrics
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._answers: dict[str, _Answer] = {}
        self._pending: dict[str, asyncio.Future[_Answer]] = {}
        # bumped by invalidate(): an answer asked for before the bump is returned but not kept
        self._epochs: dict[str, int] = {}

    def invalidate(self, key_id: str) -> None:
        """Forget ``key_id``'s cached answer (its budget or spend changed); the next request asks again."""
        self._answers.pop(key_id, None)
        if len(self._epochs) >= _MAX_ENTRIES:
            self._epochs.clear()
        self._epochs[key_id] = self._epochs.get(key_id, 0) + 1

    async def refusal(self, key_id: str) -> common_pb2.Error | None:
        """A 429 ``insufficient_quota`` when ``key_id`` has spent its budget for the period, else None."""
        answer = self._answers.get(key_id)
        if answer is None or self._clock() - answer.at >= self._ttl_s:
            answer = await self._refresh(key_id)
        reply = answer.reply
        if reply is None or reply.allowed:
            return None
        wait_ms = max(0, reply.reset_at_unix_ms - int(time.time() * 1000))
        return hub_error(
            429,
            f"this API key is over its {reply.period} budget: spent ${reply.spent_usd:.4f} of "
            f"${reply.limit_usd:.4f}; it resets in {math.ceil(wait_ms / 1000)}s",
            type_="insufficient_quota",
            code="insufficient_quota",
            retry_after_ms=wait_ms,
        )

    async def _refresh(self, key_id: str) -> _Answer:
        pending = self._pending.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._pending[key_id] = future
        try:
            epoch = self._epochs.get(key_id, 0)
            answer = _Answer(self._clock(), await self._ask(key_id))
            if len(self._answers) >= _MAX_ENTRIES:
                self._answers.clear()
            if self._epochs.get(key_id, 0) == epoch:
                self._answers[key_id] = answer
            future.set_result(answer)
            return answer
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            del self._pending[key_id]

    async def _ask(self, key_id: str) -> usage_pb2.CheckBudgetReply | None:
        self._metrics.checks.inc()
        try:
            reply: usage_pb2.CheckBudgetReply = await self._usage.CheckBudget(
                usage_pb2.CheckBudgetRequest(key_id=key_id), metadata=call_metadata(), timeout=self._timeout_s
            )
            return reply
        except grpc.aio.AioRpcError as exc:
            self._metrics.failures.inc()
            log.warning("budget check failed; admitting the request (fail open)", extra={"code": str(exc.code())})
            return None
