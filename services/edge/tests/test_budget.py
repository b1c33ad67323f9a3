"""Budget admission: cached per key, one call for concurrent requests, fail open when usage is down."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from omniroute.v1 import usage_pb2
from omniroute_edge.budget import BudgetGuard, BudgetMetrics


class _Down(grpc.aio.AioRpcError):
    def __init__(self) -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")


class FakeUsage:
    def __init__(self) -> None:
        self.calls = 0
        self.reply = usage_pb2.CheckBudgetReply(allowed=True)
        self.down = False
        self.delay_s = 0.0

    async def CheckBudget(self, request: usage_pb2.CheckBudgetRequest, **_: Any) -> usage_pb2.CheckBudgetReply:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.down:
            raise _Down()
        return self.reply


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def guard(usage: FakeUsage, clock: Clock) -> tuple[BudgetGuard, BudgetMetrics]:
    metrics = BudgetMetrics(CollectorRegistry())
    return BudgetGuard(usage, metrics, ttl_s=2.0, clock=clock), metrics  # type: ignore[arg-type]


async def test_answers_are_cached_for_the_ttl() -> None:
    usage, clock = FakeUsage(), Clock()
    budget, _ = guard(usage, clock)
    assert await budget.refusal("k") is None
    assert await budget.refusal("k") is None
    assert usage.calls == 1
    clock.now = 2.5
    usage.reply = usage_pb2.CheckBudgetReply(
        allowed=False,
        has_budget=True,
        limit_usd=1.0,
        spent_usd=1.5,
        period="daily",
        reset_at_unix_ms=int(time.time() * 1000) + 3_600_000,
    )
    error = await budget.refusal("k")
    assert usage.calls == 2
    assert error is not None
    assert (error.status, error.type, error.code) == (429, "insufficient_quota", "insufficient_quota")
    assert 3_500_000 < error.retry_after_ms <= 3_600_000


async def test_concurrent_requests_share_one_call() -> None:
    usage, clock = FakeUsage(), Clock()
    usage.delay_s = 0.05
    budget, _ = guard(usage, clock)
    results = await asyncio.gather(*(budget.refusal("k") for _ in range(20)))
    assert results == [None] * 20
    assert usage.calls == 1


async def test_usage_down_fails_open_and_is_counted() -> None:
    usage, clock = FakeUsage(), Clock()
    usage.down = True
    budget, metrics = guard(usage, clock)
    assert await budget.refusal("k") is None
    assert await budget.refusal("k") is None
    assert usage.calls == 1  # the failure is cached too: an outage adds no latency per request
    assert metrics.failures._value.get() == 1


OVER = usage_pb2.CheckBudgetReply(allowed=False, has_budget=True, limit_usd=1.0, spent_usd=1.01, period="daily")


async def test_invalidate_makes_the_next_request_ask_again() -> None:
    usage, clock = FakeUsage(), Clock()
    budget, _ = guard(usage, clock)
    assert await budget.refusal("k") is None
    usage.reply = OVER
    assert await budget.refusal("k") is None  # still the cached answer
    budget.invalidate("k")
    assert await budget.refusal("k") is not None
    assert usage.calls == 2
    budget.invalidate("other")  # another key's notice leaves this one cached
    assert await budget.refusal("k") is not None
    assert usage.calls == 2


async def test_an_answer_asked_before_a_notice_is_not_kept() -> None:
    usage, clock = FakeUsage(), Clock()
    usage.delay_s = 0.05
    budget, _ = guard(usage, clock)
    asking = asyncio.ensure_future(budget.refusal("k"))
    await asyncio.sleep(0.01)
    budget.invalidate("k")  # the spend changed while that answer was on its way
    assert await asking is None
    usage.reply, usage.delay_s = OVER, 0.0
    assert await budget.refusal("k") is not None
    assert usage.calls == 2
