"""Breakers and cooldowns: pure transitions with an injected clock, the retry-after parsing, and two replicas
sharing one real Redis (a cooldown, an opened breaker and a reset set by one are seen by the other within 1 s)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from omniroute_executor.attempts import Kind, classify, retry_after_ms
from omniroute_executor.resilience import Health, HealthStore, Profile, after_failure, profiles_from

P = Profile(failure_threshold=3, cooldown_ms=10_000, base_backoff_ms=1_000, max_backoff_ms=5_000)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # (what happened, at ms) → the record after it
        ([("fail", 0), ("fail", 1)], Health(failures=2)),
        ([("fail", 0), ("fail", 1), ("fail", 2)], Health(failures=3, open_until_ms=10_002)),
        ([("fail", 0), ("fail", 0), ("fail", 0), ("fail", 10_000)], Health(failures=4, open_until_ms=20_000)),
        ([("429", 0)], Health(cooldown_until_ms=1_000, backoff_level=1)),
        ([("429", 0), ("429", 0), ("429", 0)], Health(cooldown_until_ms=4_000, backoff_level=3)),
        ([("429", 0)] * 6, Health(cooldown_until_ms=5_000, backoff_level=6)),  # capped
        ([("429 retry-after 7000", 100)], Health(cooldown_until_ms=7_100, backoff_level=1)),
        ([("503 retry-after 2000", 0)], Health(failures=1, cooldown_until_ms=2_000)),
    ],
)
def test_transitions(steps: list[tuple[str, int]], expected: Health) -> None:
    health = Health()
    for what, at in steps:
        wait = int(what.rsplit(" ", 1)[1]) if "retry-after" in what else 0
        health = after_failure(health, P, at, rate_limited=what.startswith("429"), retry_after_ms=wait)
    assert health == expected


def test_blocked_and_half_open() -> None:
    h = Health(failures=3, open_until_ms=10_000)
    assert h.blocked_until(5_000) == 10_000 and not h.half_open(5_000)
    assert h.blocked_until(10_000) == 0 and h.half_open(10_000)
    assert Health(cooldown_until_ms=50).blocked_until(10) == 50
    assert Health.decode(Health(1, 2, 3, 4).encode()) == Health(1, 2, 3, 4)
    assert Health.decode("junk") == Health()


def test_profiles_from_settings() -> None:
    profiles = profiles_from({"resilience": {"profiles": {"connection": {"failureThreshold": 7, "cooldownMs": -1}}}})
    assert profiles["connection"].failure_threshold == 7
    assert profiles["connection"].cooldown_ms == 15_000  # invalid values keep the default
    assert profiles["provider"].failure_threshold == 10


@pytest.mark.parametrize(
    ("headers", "ms"),
    [
        ({"retry-after": "7"}, 7_000),
        ({"retry-after": "0.5"}, 500),
        ({"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "20ms"}, 20),
        ({"x-ratelimit-reset": "1.5"}, 1_500),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0),
        ({}, 0),
    ],
)
def test_retry_after(headers: dict[str, str], ms: int) -> None:
    assert retry_after_ms(headers) == ms


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, Kind.OK), (400, Kind.STOP), (413, Kind.STOP), (422, Kind.STOP), (401, Kind.NEXT), (403, Kind.NEXT),
     (404, Kind.NEXT), (408, Kind.RETRY), (429, Kind.RETRY), (500, Kind.RETRY), (503, Kind.RETRY)],
)  # fmt: skip
def test_classify(status: int, kind: Kind) -> None:
    assert classify(status) is kind


async def test_local_store_with_an_injected_clock_admits_one_probe() -> None:
    now = [0]
    store = HealthStore(None, clock_ms=lambda: now[0])
    for _ in range(3):
        await store.failure("conn:x", P)
    assert store.blocked_until("conn:x") == 10_000
    assert not await store.admit("conn:x", profiles=(P,))
    now[0] = 10_000
    assert await store.admit("conn:x", profiles=(P,))  # the probe
    assert not await store.admit("conn:x", profiles=(P,))  # only one at a time
    await store.failure("conn:x", P)  # the probe failed: open again
    assert store.blocked_until("conn:x") == 20_000
    now[0] = 20_000
    assert await store.admit("conn:x", profiles=(P,))
    await store.success("conn:x")
    assert store.get("conn:x").clean and await store.admit("conn:x", profiles=(P,))


async def test_a_store_without_records_is_quiet_until_a_failure() -> None:
    store = HealthStore(None, clock_ms=lambda: 0)

    def quiet() -> bool:  # read afresh each time (a property would be narrowed by the type checker)
        return store.quiet

    assert quiet() and store.blocked_until("conn:x", "prov:p") == 0 and await store.admit("conn:x", profiles=(P,))
    await store.success("conn:x")  # nothing to clear: still quiet
    assert quiet()
    await store.failure("conn:x", P, rate_limited=True, retry_after_ms=500)
    assert not quiet() and store.blocked_until("conn:y", "conn:x") == 500
    assert not await store.admit("conn:x", profiles=(P,)) and await store.admit("conn:y", profiles=(P,))
    await store.success("conn:x")
    assert quiet()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def seen_within(store: HealthStore, key: str, blocked: bool, limit_s: float = 1.0) -> float:
    """Seconds until ``store`` sees ``key`` blocked (or unblocked); fails after ``limit_s``."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        await store.refresh()
        if bool(store.blocked_until(key)) is blocked:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"{key} not {'blocked' if blocked else 'clear'} within {limit_s}s")


async def test_two_replicas_share_cooldowns_breakers_and_resets(redis: Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex}"
    one, two = HealthStore(redis, prefix=prefix), HealthStore(redis, prefix=prefix)
    await two.refresh(force=True)

    await one.failure("conn:a", P, rate_limited=True, retry_after_ms=30_000)
    assert await seen_within(two, "conn:a", blocked=True) < 1.0
    for _ in range(3):
        await one.failure("prov:openai", P)
    assert await seen_within(two, "prov:openai", blocked=True) < 1.0

    await one.reset("conn:a")
    assert await seen_within(two, "conn:a", blocked=False) < 1.0
    assert two.blocked_until("prov:openai")
    await one.reset()
    assert await seen_within(two, "prov:openai", blocked=False) < 1.0


async def test_a_new_epoch_starts_clean_and_one_probe_across_replicas(redis: Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex}"
    now = [int(time.time() * 1000)]
    one = HealthStore(redis, prefix=prefix, clock_ms=lambda: now[0])
    two = HealthStore(redis, prefix=prefix, clock_ms=lambda: now[0])
    for _ in range(3):
        await one.failure("conn:a", P)
    now[0] += P.cooldown_ms
    await two.refresh(force=True)
    assert two.get("conn:a").half_open(now[0])
    results = [await one.admit("conn:a", profiles=(P,)), await two.admit("conn:a", profiles=(P,))]
    assert sorted(results) == [False, True]
    two.use_epoch("1")
    await two.refresh(force=True)
    assert two.get("conn:a").clean


async def test_redis_down_falls_back_to_local_state() -> None:
    dead = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        store = HealthStore(dead)
        await store.failure("conn:a", P, rate_limited=True, retry_after_ms=5_000)
        await store.refresh(force=True)
        assert store.blocked_until("conn:a")
    finally:
        await dead.aclose()
