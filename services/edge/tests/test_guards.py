"""The guard chain: model first, then budget, then rate limits; keys without limits never touch Redis."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from omniroute.v1 import common_pb2
from omniroute_core.snapshot import ApiKey, ConfigSnapshot, RateLimits
from omniroute_edge.guards import Guards, Refused, default_limits, with_headers
from omniroute_edge.ratelimit import Decision


class FakeLimiter:
    def __init__(self) -> None:
        self.calls: list[RateLimits] = []
        self.released = 0

    async def admit(self, key_id: str, limits: RateLimits, tokens: int, request_id: str) -> Decision:
        self.calls.append(limits)
        return Decision([(b"x-ratelimit-limit-requests", b"1")], None, holds_slot=bool(limits.concurrent))

    async def release(self, key_id: str) -> None:
        self.released += 1


class FakeBudget:
    def __init__(self, error: common_pb2.Error | None = None) -> None:
        self.error = error
        self.calls = 0

    async def refusal(self, key_id: str) -> common_pb2.Error | None:
        self.calls += 1
        return self.error


def snap(settings: dict[str, Any] | None = None) -> ConfigSnapshot:
    return ConfigSnapshot.build(1, (), (), settings or {})


def guards(limiter: FakeLimiter, budget: FakeBudget) -> Guards:
    from omniroute_edge.guards import GuardMetrics

    return Guards(limiter, budget, GuardMetrics(CollectorRegistry()))  # type: ignore[arg-type]


async def admit(
    g: Guards, key: ApiKey | None, model: str = "openai/gpt-4o", settings: dict[str, Any] | None = None
) -> Any:
    return await g.admit(snap(settings), key, model, {}, 10, (), "rid")


async def test_keys_without_limits_skip_redis() -> None:
    limiter, budget = FakeLimiter(), FakeBudget()
    admission = await admit(guards(limiter, budget), ApiKey("k", "n", "h"))
    assert admission.headers == [] and admission.release is None
    assert limiter.calls == []
    assert budget.calls == 1


async def test_anonymous_callers_are_not_checked() -> None:
    limiter, budget = FakeLimiter(), FakeBudget()
    await admit(guards(limiter, budget), None)
    assert limiter.calls == [] and budget.calls == 0


async def test_a_blocked_model_is_refused_before_budget_and_limits() -> None:
    limiter, budget = FakeLimiter(), FakeBudget()
    key = ApiKey("k", "n", "h", blocked_models=("openai/*",), rate_limits=RateLimits(rpm=1))
    with pytest.raises(Refused) as refused:
        await admit(guards(limiter, budget), key)
    assert refused.value.error.status == 403
    assert limiter.calls == [] and budget.calls == 0


async def test_over_budget_is_refused_before_limits_and_says_do_not_retry() -> None:
    from omniroute_core.errors import hub_error

    limiter, budget = FakeLimiter(), FakeBudget(hub_error(429, "over", type_="insufficient_quota"))
    with pytest.raises(Refused) as refused:
        await admit(guards(limiter, budget), ApiKey("k", "n", "h", rate_limits=RateLimits(rpm=1)))
    assert (b"x-should-retry", b"false") in refused.value.headers
    assert limiter.calls == []


async def test_global_defaults_fill_unset_key_limits() -> None:
    limiter, budget = FakeLimiter(), FakeBudget()
    settings = {"rateLimit": {"defaults": {"rpm": 60, "concurrent": 4}}}
    key = ApiKey("k", "n", "h", rate_limits=RateLimits(rpm=5))
    admission = await admit(guards(limiter, budget), key, settings=settings)
    assert limiter.calls == [RateLimits(rpm=5, concurrent=4)]
    assert admission.release is not None
    await admission.release()
    assert limiter.released == 1
    assert default_limits({"rateLimit": {"defaults": {"rpm": 0, "tpm": "x"}}}) == RateLimits()


async def test_with_headers_adds_to_the_response_start_only() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    wrapped = with_headers(send, [(b"a", b"1")])
    await wrapped({"type": "http.response.start", "status": 200, "headers": [(b"b", b"2")]})
    await wrapped({"type": "http.response.body", "body": b"x"})
    assert sent[0]["headers"] == [(b"b", b"2"), (b"a", b"1")]
    assert sent[1] == {"type": "http.response.body", "body": b"x"}
    assert with_headers(send, []) is send
