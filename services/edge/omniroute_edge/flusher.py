"""A background writer for state the edge aggregates in memory and stores in Redis now and then.

Per-request bookkeeping that nobody needs within the same request (session activity, the cache hit rate) is
counted in process and written by one task every ``interval_s``, so a request never waits for Redis nor pays a
Redis command's client-side CPU for it. :meth:`Flusher.wake` asks for an early write (a batch grew large).
A failed write is logged and the loop goes on: an outage of Redis loses at most the batches it interrupts and
never reaches a caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Flusher"]

log = logging.getLogger(__name__)


class Flusher:
    """Calls ``flush`` every ``interval_s`` (sooner after :meth:`wake`) until :meth:`stop`, which flushes once more."""

    def __init__(self, flush: Callable[[], Awaitable[None]], *, interval_s: float, name: str) -> None:
        self._flush = flush
        self._interval_s = interval_s
        self._name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s: a batch could not be written to Redis", self._name, exc_info=True)
