"""The rate-limit script against a real Redis: sliding windows, tokens, concurrency, headers, shared state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from omniroute_core.snapshot import RateLimits
from omniroute_edge.ratelimit import RateLimiter, _duration, estimate_tokens


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def limiter(redis: aioredis.Redis) -> RateLimiter:
    return RateLimiter(redis, inflight_ttl_ms=60_000, prefix=f"t:{uuid.uuid4().hex}")


async def test_requests_per_minute_with_headers(redis: aioredis.Redis) -> None:
    rl = limiter(redis)
    limits = RateLimits(rpm=3)
    remaining = []
    for i in range(3):
        decision = await rl.admit("k", limits, 1, f"r{i}")
        assert decision.error is None
        headers = dict(decision.headers)
        assert headers[b"x-ratelimit-limit-requests"] == b"3"
        remaining.append(int(headers[b"x-ratelimit-remaining-requests"]))
        assert headers[b"x-ratelimit-reset-requests"].endswith(b"s")
    assert remaining == [2, 1, 0]
    refused = await rl.admit("k", limits, 1, "r3")
    assert refused.error is not None
    assert refused.error.status == 429
    assert refused.error.code == "rate_limit_requests"
    assert 1000 <= refused.error.retry_after_ms <= 60_000
    assert dict(refused.headers)[b"x-ratelimit-remaining-requests"] == b"0"
    # refusals are not recorded: the window does not grow
    assert await redis.zcard(rl._keys("k")[0]) == 3


async def test_two_limiters_share_one_window(redis: aioredis.Redis) -> None:
    prefix = f"t:{uuid.uuid4().hex}"
    a = RateLimiter(redis, inflight_ttl_ms=60_000, prefix=prefix)
    b = RateLimiter(redis, inflight_ttl_ms=60_000, prefix=prefix)
    limits = RateLimits(rpm=2)
    assert (await a.admit("k", limits, 1, "1")).error is None
    assert (await b.admit("k", limits, 1, "2")).error is None
    assert (await a.admit("k", limits, 1, "3")).error is not None
    assert (await b.admit("other", limits, 1, "4")).error is None


async def test_tokens_per_minute(redis: aioredis.Redis) -> None:
    rl = limiter(redis)
    limits = RateLimits(tpm=100)
    first = await rl.admit("k", limits, 60, "1")
    assert first.error is None
    assert dict(first.headers)[b"x-ratelimit-remaining-tokens"] == b"40"
    refused = await rl.admit("k", limits, 50, "2")
    assert refused.error is not None
    assert refused.error.code == "rate_limit_tokens"
    assert (await rl.admit("k", limits, 40, "3")).error is None


async def test_a_request_larger_than_the_limit_fits_an_empty_window(redis: aioredis.Redis) -> None:
    rl = limiter(redis)
    assert (await rl.admit("k", RateLimits(tpm=10), 1000, "1")).error is None
    assert (await rl.admit("k", RateLimits(tpm=10), 1, "2")).error is not None


async def test_concurrency_slots_are_taken_and_released(redis: aioredis.Redis) -> None:
    rl = limiter(redis)
    limits = RateLimits(concurrent=2)
    one = await rl.admit("k", limits, 1, "1")
    two = await rl.admit("k", limits, 1, "2")
    assert one.holds_slot and two.holds_slot
    refused = await rl.admit("k", limits, 1, "3")
    assert refused.error is not None
    assert refused.error.code == "rate_limit_concurrent"
    await rl.release("k")
    assert (await rl.admit("k", limits, 1, "4")).error is None
    # a slot whose counter already expired never drives it negative
    for _ in range(5):
        await rl.release("k")
    assert int(await redis.get(rl._keys("k")[2]) or 0) == 0
    # no sliding log for a concurrency-only key
    assert await redis.exists(rl._keys("k")[0]) == 0


async def test_the_script_is_reloaded_after_a_script_flush(redis: aioredis.Redis) -> None:
    rl = limiter(redis)
    assert (await rl.admit("k", RateLimits(rpm=5), 1, "1")).error is None
    await redis.script_flush()
    assert (await rl.admit("k", RateLimits(rpm=5), 1, "2")).error is None


def test_token_estimate() -> None:
    paths = (("max_completion_tokens",), ("max_tokens",))
    assert estimate_tokens({"max_tokens": 100}, 400, paths) == 200
    assert estimate_tokens({"max_tokens": True}, 400, paths) == 100
    assert estimate_tokens({}, 2, paths) == 1
    assert (
        estimate_tokens({"generationConfig": {"maxOutputTokens": 7}}, 40, (("generationConfig", "maxOutputTokens"),))
        == 17
    )


def test_duration_format() -> None:
    assert _duration(0) == "0s"
    assert _duration(1500) == "1.5s"
    assert _duration(60_000) == "1m0s"
    assert _duration(-5) == "0s"
