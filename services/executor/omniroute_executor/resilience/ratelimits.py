"""What providers say about each account's rate limits, recorded in Redis for every replica and the dashboard.

:meth:`RateLimitRecorder.observe` is called with every provider response and costs a few header lookups on the
request path: a response that carries rate-limit information (one of :data:`MARKERS`, or a 429) is kept as the
newest for its connection, others are ignored (so a later response without headers does not hide what an earlier
one said). A background task, every ``flush_s``, parses
what was kept (:func:`omniroute_core.ratelimits.parse_rate_limits`) and writes every record in one pipelined round
trip (``SET`` with an expiry per connection), so nothing on the request path waits for Redis and a burst of
responses costs one write per connection per interval. At most ``max_pending`` connections are held between
flushes (more are dropped until the next one); a failed write drops that batch, and the next response of the
connection writes again. The 429 cooldowns themselves are breaker state (:mod:`omniroute_executor.resilience.store`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from omniroute_core import jsonx
from omniroute_core.ratelimits import RATE_LIMIT_TTL_S, parse_rate_limits, rate_limit_key

__all__ = ["MARKERS", "RateLimitRecorder"]

log = logging.getLogger(__name__)

# a response carrying any of these (looked up case-insensitively in the upstream's headers) is recorded
MARKERS = (
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-remaining",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-input-tokens-remaining",
    "ratelimit-remaining",
    "retry-after",
)


class RateLimitRecorder:
    def __init__(
        self,
        redis: Redis | None,
        *,
        flush_s: float = 0.25,
        max_pending: int = 10_000,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._redis = redis
        self._flush_s = flush_s
        self._max_pending = max_pending
        self._clock_ms = clock_ms
        self._pending: dict[str, tuple[int, int, Mapping[str, str]]] = {}
        self._task: asyncio.Task[None] | None = None

    def observe(self, connection_id: str, status: int, headers: Mapping[str, str]) -> None:
        """Keep this response's rate-limit information for the next flush (the newest per connection wins)."""
        if self._redis is None or (len(self._pending) >= self._max_pending and connection_id not in self._pending):
            return
        if status != 429 and not any(name in headers for name in MARKERS):
            return
        self._pending[connection_id] = (status, self._clock_ms(), headers)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rate-limit-recorder")

    async def flush(self) -> int:
        """Write what was observed since the last flush; returns how many records were written."""
        pending, self._pending = self._pending, {}
        records = {
            conn: record
            for conn, (status, at, headers) in pending.items()
            if (record := parse_rate_limits(headers.items(), status, at)) is not None
        }
        if not records or self._redis is None:
            return 0
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for conn, record in records.items():
                    pipe.set(rate_limit_key(conn), jsonx.dumps(record), ex=RATE_LIMIT_TTL_S)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("rate-limit records not written", extra={"error": str(exc), "connections": len(records)})
            return 0
        return len(records)

    async def close(self) -> None:
        """Stop the background task after a last flush."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()
