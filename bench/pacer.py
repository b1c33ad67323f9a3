"""Timers for the mock provider's pacing that are not on the event loop's millisecond grid.

uvloop (libuv) keeps timers in whole milliseconds of a loop clock that advances once per iteration, so
``asyncio.sleep(0.001)`` ends on the next millisecond boundary of ``CLOCK_MONOTONIC``: anywhere from a few µs to
~2 ms after it was asked for, depending on where in the millisecond it started. The load generator sends on the
same grid, so how long the mock's stream lasted depended on the request's arrival time modulo 1 ms: through the
gateway (arriving ~0.5-1 ms later than directly) a 10-chunk stream took up to ~0.3 ms less or more than the same
stream direct, and the streaming "added latency" flipped between ~0.5 and ~1.2 ms from run to run with the same
code (bench/PROFILE.md, round 7).

:class:`Pacer` arms one ``timerfd`` (Linux, ``CLOCK_MONOTONIC``, absolute deadlines in ns) from a heap of pending
deadlines and runs their callbacks from the loop when it fires: each deadline is met to within the wake-up
latency, whatever the phase. Where timerfd is unavailable one ``loop.call_later`` timer stands in for it (the
heap, its order and "never early" stay the same; only the precision is the loop's).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import os
import time
from collections.abc import Callable

__all__ = ["Pacer"]

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class Pacer:
    """``call_at(deadline_ns, callback)`` on ``time.monotonic_ns()``'s clock, precise to the wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[int, int, Callable[[], object]]] = []
        self._order = itertools.count()  # equal deadlines run in the order they were asked for
        self._armed = 0  # the deadline the timer is set for (0: none)
        self._fd = -1
        self._fallback: asyncio.TimerHandle | None = None  # the loop's timer, where there is no timerfd
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._settime = libc.timerfd_settime
            fd = int(libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC))
        except (OSError, AttributeError):
            fd = -1
        if fd >= 0:
            self._fd = fd
            loop.add_reader(fd, self._fire)

    @property
    def precise(self) -> bool:
        """Whether deadlines run off the timerfd (else off the loop's own timers)."""
        return self._fd >= 0

    def call_at(self, deadline_ns: int, callback: Callable[[], object]) -> None:
        heapq.heappush(self._heap, (deadline_ns, next(self._order), callback))
        if not self._armed or deadline_ns < self._armed:
            self._arm(deadline_ns)

    async def sleep_until(self, deadline_ns: int) -> None:
        waiter = self._loop.create_future()
        self.call_at(deadline_ns, lambda: waiter.done() or waiter.set_result(None))
        await waiter

    def close(self) -> None:
        """Stop using the timerfd (what is pending moves to the loop's timer)."""
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
            if self._armed:
                self._arm(self._armed)

    def _arm(self, deadline_ns: int) -> None:
        self._armed = deadline_ns
        if self._fd < 0:
            if self._fallback is not None:
                self._fallback.cancel()
            self._fallback = self._loop.call_later(max(0, deadline_ns - time.monotonic_ns()) / 1e9, self._fire)
            return
        spec = _Itimerspec()
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(max(deadline_ns, 1), 1_000_000_000)
        if self._settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def _fire(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(BlockingIOError):  # a spurious wake-up has no expiry count to read
                os.read(self._fd, 8)
        self._fallback = None
        self._armed = 0
        now = time.monotonic_ns()
        while self._heap and self._heap[0][0] <= now:
            heapq.heappop(self._heap)[2]()
        if self._heap:
            self._arm(self._heap[0][0])
