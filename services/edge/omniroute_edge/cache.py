"""The exact reply cache: an in-process LRU in front of Redis, shared by every edge replica.

An entry's key is a hash of everything that could change the answer: the caller's scope (API key, or the client
address when anonymous), the route, and the whole request body in canonical form (sorted keys), so requests that
differ in model, parameters, tools, system prompt or stream flag never share an entry. A streamed reply is
stored as the bytes that were sent, so a hit on a streaming request replays a proper stream in the client's
format. Only complete 200 replies are stored.

The hit rate (``CACHE_STATS``, shown by ``/api/cache``) is counted in process and added to Redis every
``stats_flush_s`` by a :class:`~omniroute_edge.flusher.Flusher`: a hit from the in-process tier then costs no
Redis command at all (the count's own round trip used to be most of such a hit's CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import redis.asyncio as aioredis

from omniroute_core import jsonx
from omniroute_core.cachekeys import CACHE_CLEAR_CHANNEL, CACHE_INDEX, CACHE_MEMORY, CACHE_PREFIX, CACHE_STATS
from omniroute_edge.flusher import Flusher
from omniroute_edge.replies import StoredReply

__all__ = ["ExactCache", "eligible"]

log = logging.getLogger(__name__)


def eligible(doc: Mapping[str, Any], temperature_path: tuple[str, ...], policy: str) -> bool:
    """Whether a request may be served from (and stored in) the cache.

    ``policy`` is ``"always"``, ``"never"`` or ``"deterministic"`` (the default: only when the request pins
    temperature to 0, the one case where a repeated answer is what the caller asked for).
    """
    if policy == "always":
        return True
    if policy == "never":
        return False
    value: Any = doc
    for key in temperature_path:
        value = value.get(key) if isinstance(value, dict) else None
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


class ExactCache:
    def __init__(
        self, redis: aioredis.Redis, *, ttl_s: float, memory_max: int, db_max: int, stats_flush_s: float = 0.25
    ) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._memory_max = memory_max
        self._db_max = db_max
        self._lru: OrderedDict[str, tuple[float, StoredReply]] = OrderedDict()
        self._instance = uuid.uuid4().hex[:12]
        self._listener: asyncio.Task[None] | None = None
        self._stopping = False
        self._on_clear: list[Callable[[], Awaitable[None]]] = []
        self._clearing: set[asyncio.Task[None]] = set()
        self._hits = self._misses = 0  # not yet added to CACHE_STATS
        self._stats = Flusher(self.flush_counts, interval_s=stats_flush_s, name="cache-stats")

    def key_for(self, scope: str, route: str, doc: Any) -> str:
        canonical = jsonx.dumps(doc, sort_keys=True)
        return CACHE_PREFIX + hashlib.sha256(scope.encode() + b"\0" + route.encode() + b"\0" + canonical).hexdigest()

    async def get(self, key: str, *, count: bool = True) -> StoredReply | None:
        """The stored reply of ``key``; ``count``: record the outcome in the hit rate (a caller that consults
        another tier on a miss counts once itself, with :meth:`count`)."""
        now = time.monotonic()
        hit = self._lru.get(key)
        if hit is not None and hit[0] > now:
            self._lru.move_to_end(key)
            reply: StoredReply | None = hit[1]
        else:
            data = cast(bytes | None, await self._redis.get(key))
            reply = None if data is None else StoredReply.decode(data)
            if reply is not None:
                self._remember(key, reply, now)
        if count:
            self.count(hit=reply is not None)
        return reply

    def count(self, *, hit: bool) -> None:
        """Record one lookup's outcome in the hit rate (written to Redis by the next :meth:`flush_counts`)."""
        if hit:
            self._hits += 1
        else:
            self._misses += 1

    async def flush_counts(self) -> None:
        """Add the outcomes counted since the last call to ``CACHE_STATS`` (lost if Redis fails meanwhile)."""
        hits, misses = self._hits, self._misses
        if not hits and not misses:
            return
        self._hits = self._misses = 0
        async with self._redis.pipeline(transaction=False) as pipe:
            if hits:
                pipe.hincrby(CACHE_STATS, "hits", hits)
            if misses:
                pipe.hincrby(CACHE_STATS, "misses", misses)
            await pipe.execute()

    async def put(self, key: str, reply: StoredReply) -> None:
        if reply.status != 200:
            return
        self._remember(key, reply, time.monotonic())
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(key, reply.encode(), px=int(self._ttl_s * 1000))
            pipe.zadd(CACHE_INDEX, {key: time.time()})
            pipe.zcard(CACHE_INDEX)
            size = (await pipe.execute())[-1]
        if size > self._db_max:
            evicted = cast(list[tuple[bytes, float]], await self._redis.zpopmin(CACHE_INDEX, size - self._db_max))
            if evicted:
                await self._redis.delete(*[member for member, _ in evicted])

    def _remember(self, key: str, reply: StoredReply, now: float) -> None:
        self._lru[key] = (now + self._ttl_s, reply)
        self._lru.move_to_end(key)
        while len(self._lru) > self._memory_max:
            self._lru.popitem(last=False)

    def clear_memory(self) -> None:
        self._lru.clear()

    def on_clear(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Also run ``callback`` when the control plane clears the caches (another tier's own storage)."""
        self._on_clear.append(callback)

    def _cleared(self) -> None:
        self.clear_memory()
        self._hits = self._misses = 0  # the clear reset CACHE_STATS: outcomes from before it do not count
        for callback in self._on_clear:
            task = asyncio.ensure_future(callback())
            self._clearing.add(task)
            task.add_done_callback(self._clearing.discard)

    async def start(self) -> None:
        """Follow clear requests from the control plane, report this edge's in-process tier size and write
        the hit rate's counts."""
        self._stopping = False
        self._listener = asyncio.create_task(self._listen(), name="cache-clear-listener")
        await self._stats.start()

    async def stop(self) -> None:
        await self._stats.stop()
        if self._listener:
            # redis-py's get_message(timeout=...) can turn a cancellation into its own timeout and return None
            # (the task then polls on): the flag ends the loop at its next turn, at most a second later
            self._stopping = True
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        with contextlib.suppress(Exception):
            await self._redis.hdel(CACHE_MEMORY, self._instance)

    async def _listen(self) -> None:
        while not self._stopping:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CACHE_CLEAR_CHANNEL)
                    while not self._stopping:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None:
                            self._cleared()
                        await self._redis.hset(
                            CACHE_MEMORY, self._instance, f"{len(self._lru)}/{self._memory_max}/{int(time.time())}"
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("cache clear listener interrupted; retrying", exc_info=True)
                await asyncio.sleep(1.0)
