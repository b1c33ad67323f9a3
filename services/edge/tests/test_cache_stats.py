"""The exact cache's hit rate: counted in process, added to Redis on an interval, against a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from omniroute_core.cachekeys import CACHE_CLEAR_CHANNEL, CACHE_STATS
from omniroute_edge.cache import ExactCache
from omniroute_edge.replies import StoredReply

REPLY = StoredReply(200, [(b"content-type", b"application/json")], b'{"ok":true}')


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


async def stats(redis: aioredis.Redis) -> tuple[int, int]:
    raw = cast(dict[bytes, bytes], await redis.hgetall(CACHE_STATS))
    return int(raw.get(b"hits", 0)), int(raw.get(b"misses", 0))


def cache(redis: aioredis.Redis, flush_s: float) -> ExactCache:
    return ExactCache(redis, ttl_s=60, memory_max=10, db_max=100, stats_flush_s=flush_s)


async def test_lookups_reach_the_hit_rate_on_the_interval_without_a_redis_command_each(redis: aioredis.Redis) -> None:
    exact = cache(redis, 0.05)
    key = exact.key_for("scope-" + uuid.uuid4().hex, "/v1/chat/completions", {"q": 1})
    await exact.put(key, REPLY)
    hits, misses = await stats(redis)
    assert await exact.get(key) == REPLY  # an in-process hit
    assert await exact.get(key + "-absent") is None  # a Redis miss
    assert await exact.get(key) == REPLY
    assert await stats(redis) == (hits, misses)  # nothing written by the lookups themselves
    await exact.start()
    try:
        for _ in range(100):
            if await stats(redis) == (hits + 2, misses + 1):
                break
            await asyncio.sleep(0.02)
        assert await stats(redis) == (hits + 2, misses + 1)
    finally:
        await exact.stop()


async def test_stop_writes_the_counts_not_yet_written(redis: aioredis.Redis) -> None:
    exact = cache(redis, 3600)
    await exact.start()
    hits, misses = await stats(redis)
    exact.count(hit=True)
    exact.count(hit=False)
    exact.count(hit=False)
    await exact.stop()
    assert await stats(redis) == (hits + 1, misses + 2)


async def test_a_clear_drops_the_counts_from_before_it(redis: aioredis.Redis) -> None:
    exact = cache(redis, 3600)
    cleared = asyncio.Event()

    async def on_clear() -> None:
        cleared.set()

    exact.on_clear(on_clear)
    await exact.start()
    try:
        exact.count(hit=True)
        for _ in range(100):  # the listener subscribes in the background
            numsub = cast(list[tuple[bytes, int]], await redis.pubsub_numsub(CACHE_CLEAR_CHANNEL))
            if numsub and numsub[0][1] > 0:
                break
            await asyncio.sleep(0.02)
        hits, misses = await stats(redis)
        await redis.publish(CACHE_CLEAR_CHANNEL, b"clear")
        await asyncio.wait_for(cleared.wait(), 3)
        exact.count(hit=False)  # after the clear: counted
    finally:
        await exact.stop()
    assert await stats(redis) == (hits, misses + 1)


async def test_a_redis_outage_never_reaches_a_lookup() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    exact = cache(dead, 0.01)
    exact.count(hit=True)  # never raises, never waits
    with pytest.raises(RedisConnectionError):
        await exact.flush_counts()
    await exact.flush_counts()  # the failed batch was dropped: nothing left to write
    await dead.aclose()


async def test_stop_ends_the_clear_listener_whenever_it_comes(redis: aioredis.Redis) -> None:
    # redis-py's get_message(timeout=...) may swallow the listener's cancellation: stop must still end it
    for _ in range(20):
        exact = cache(redis, 3600)
        await exact.start()
        exact.count(hit=True)  # stop writes it first: the listener is inside get_message when it is cancelled
        await asyncio.wait_for(exact.stop(), 5)
