"""How long one request waited on providers: the edge subtracts it from its own total (the gateway overhead).

Trailing metadata carries a stream's total (its last chunk is already on the wire when the upstream ends), under
:data:`omniroute_core.grpcx.UPSTREAM_TIMING_KEY` as a serialized :class:`~omniroute.v1.executor_pb2.UpstreamTiming`.
"""

from __future__ import annotations

from collections.abc import Callable

from omniroute.v1 import executor_pb2

__all__ = ["UpstreamClock"]


class UpstreamClock:
    """Sums the time spent waiting on providers across a request's attempts.

    ``start()`` when an attempt's request goes out, ``first_byte()`` when its first bytes are relayed (only the
    first call counts), ``stop()`` when its response ended or failed (idempotent).
    """

    __slots__ = ("_clock", "_first_byte_s", "_since", "_spent_s", "sink")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._spent_s = 0.0
        self._since: float | None = None
        self._first_byte_s: float | None = None
        # kept up to date at every first_byte() and stop(), for a caller that reads it when a stream ends
        self.sink: executor_pb2.UpstreamTiming | None = None

    def start(self) -> None:
        self.stop()
        self._since = self._clock()

    def first_byte(self) -> int:
        """Record the first relayed bytes (once); returns ``first_byte_us``."""
        if self._first_byte_s is None:
            running = self._clock() - self._since if self._since is not None else 0.0
            self._first_byte_s = self._spent_s + running
            self._publish()
        return round(self._first_byte_s * 1e6)

    def stop(self) -> None:
        if self._since is not None:
            self._spent_s += self._clock() - self._since
            self._since = None
            self._publish()

    def _publish(self) -> None:
        if self.sink is not None:
            self.sink.CopyFrom(self.timing())

    def timing(self) -> executor_pb2.UpstreamTiming:
        """The finished waits (a running one up to now); first byte defaults to the total when none was relayed."""
        total = self._spent_s + (self._clock() - self._since if self._since is not None else 0.0)
        first = self._first_byte_s if self._first_byte_s is not None else total
        return executor_pb2.UpstreamTiming(total_us=round(total * 1e6), first_byte_us=round(first * 1e6))
