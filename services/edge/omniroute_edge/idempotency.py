"""Idempotency: within the window, a repeated ``Idempotency-Key`` (or ``X-Request-Id``) gets the first reply.

The first request claims the key in Redis (``SET NX PX``) and runs; its reply is stored when it ends. A
duplicate that arrives while the first is still running waits for that reply (polling Redis, so it works across
edge replicas) instead of reaching the provider a second time. Keys are scoped by API key (or client address for
anonymous callers) and route, so two callers never share a reply.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from omniroute_edge.replies import StoredReply

__all__ = ["Claim", "Idempotency"]

PENDING = b"pending"
DONE = b"done"


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    owner: bool  # True: this request runs and must call complete() or release()


class Idempotency:
    def __init__(self, redis: aioredis.Redis, *, window_ms: int, max_wait_s: float, prefix: str = "omr:idem") -> None:
        self._redis = redis
        self.window_ms = window_ms
        self._max_wait_s = max_wait_s
        self._prefix = prefix

    def key_for(self, scope: str, route: str, token: str) -> str:
        digest = hashlib.sha256(f"{scope}\0{route}\0{token}".encode()).hexdigest()
        return f"{self._prefix}:{digest}"

    async def claim(self, key: str) -> Claim:
        owner = bool(await self._redis.set(key, PENDING, nx=True, px=self.window_ms))
        return Claim(key, owner)

    async def complete(self, claim: Claim, reply: StoredReply | None) -> None:
        """Store the owner's reply for the rest of the window (or free the key when there is nothing to store)."""
        if reply is None:
            await self.release(claim)
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(claim.key + ":reply", reply.encode(), px=self.window_ms)
            pipe.set(claim.key, DONE, xx=True, keepttl=True)
            await pipe.execute()

    async def release(self, claim: Claim) -> None:
        """The owner could not produce a reply (e.g. the client left): let the next attempt run."""
        await self._redis.delete(claim.key)

    async def wait(self, claim: Claim) -> StoredReply | None:
        """The first request's reply; None when it vanished (released or expired) so the caller should run."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_s
        delay = 0.005
        while loop.time() < deadline:
            state, data = cast(list[bytes | None], await self._redis.mget(claim.key, claim.key + ":reply"))
            if data is not None:
                return StoredReply.decode(data)
            if state is None:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return None

    async def active_keys(self) -> int:
        count = 0
        async for key in self._redis.scan_iter(match=f"{self._prefix}:*", count=1000):
            if not key.endswith(b":reply"):
                count += 1
        return count
