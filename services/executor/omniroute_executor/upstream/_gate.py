"""The bounded concurrency queue of one provider pool: at most ``max_concurrent`` requests in flight, at most
``max_queued`` waiting for a slot, each for at most ``queue_timeout_s``; beyond that :class:`UpstreamBusy` at once.

A slot is handed from the request that releases it straight to the oldest waiter (first come, first served), so a
newcomer cannot overtake the queue. Limits are given on every acquire (they come from the live config), so a
change applies to the next request; lowering ``max_concurrent`` lets the excess drain instead of cutting it off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass

from omniroute_executor.upstream._errors import UpstreamBusy

__all__ = ["Gate", "QueueLimits"]


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """``max_concurrent`` ≥ 1; ``max_queued`` 0 refuses as soon as every slot is taken; ``queue_timeout_s`` is the
    longest wait for a slot. ``retry_after_ms`` is what a refusal tells the client to wait."""

    max_concurrent: int = 1000
    max_queued: int = 1000
    queue_timeout_s: float = 30.0
    retry_after_ms: int = 1000


class Gate:
    """One pool's slots. ``in_flight`` and ``queued`` are read by the metrics."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.in_flight = 0
        self._max = 1
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self, limits: QueueLimits) -> None:
        """Take a slot, waiting in line if allowed. Raises :class:`UpstreamBusy` when the line is full or the wait
        runs out. The caller must :meth:`release` exactly once after a successful acquire."""
        self._max = max(1, limits.max_concurrent)
        self._admit()  # a raised limit lets the line in before this newcomer
        if self.in_flight < self._max and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= limits.max_queued or limits.queue_timeout_s <= 0:
            raise self._busy(limits, f"{self.in_flight} requests in flight and {len(self._waiters)} waiting")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(limits.queue_timeout_s):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # the slot arrived just as the time ran out: it is ours
            self._discard(waiter)
            raise self._busy(limits, f"no free slot within {limits.queue_timeout_s:g} s") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot while leaving: pass it on
            else:
                self._discard(waiter)
            raise

    def release(self) -> None:
        """Give the slot back: to the oldest waiter, unless the pool is over a lowered limit."""
        self.in_flight -= 1
        self._admit()

    def _admit(self) -> None:
        """Hand free slots to the waiters, oldest first."""
        while self._waiters and self.in_flight < self._max:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _busy(self, limits: QueueLimits, why: str) -> UpstreamBusy:
        return UpstreamBusy(
            f"provider {self.name!r} is at its concurrency limit ({limits.max_concurrent} in flight, "
            f"{limits.max_queued} queued): {why}",
            retry_after_ms=limits.retry_after_ms,
        )
