"""The edge's request metrics (by route and status, and the gateway overhead histograms) and its request ids.

Each label set's child is looked up once and kept: ``labels()`` validates and takes a lock on every call, a few
microseconds per request that the data plane does not need to pay.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram

from omniroute_core.metrics import LabelledChildren

__all__ = ["EdgeMetrics", "new_request_id"]


class EdgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "omniroute_edge_requests", "Data-plane requests by route and status", ["route", "status"], registry=registry
        )
        self.duration = Histogram(
            "omniroute_edge_request_duration_seconds",
            "Time to the last byte, by route",
            ["route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        overhead_buckets = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
        self.overhead = Histogram(
            "omniroute_gateway_overhead_seconds",
            "Time spent in the gateway, excluding the provider: the edge's time to the last byte minus the time"
            " the executor waited on providers, by route and stream flag (requests the executor answered)",
            ["route", "stream"],
            registry=registry,
            buckets=overhead_buckets,
        )
        self.first_byte_overhead = Histogram(
            "omniroute_gateway_first_byte_overhead_seconds",
            "Streams: the edge's time to the first byte minus the executor's wait for the provider's first bytes",
            ["route"],
            registry=registry,
            buckets=overhead_buckets,
        )

        # each label set's child, looked up once (see the module doc)
        self._child = LabelledChildren().of

    def finished(self, route: str, status: int, seconds: float) -> None:
        self._child(self.requests, route, str(status)).inc()
        self._child(self.duration, route).observe(seconds)

    def observe_overhead(self, route: str, stream: bool, edge_s: float, upstream_us: int) -> None:
        # the provider's wait is nested inside the edge's time; max() only guards against clock granularity
        child = self._child(self.overhead, route, "true" if stream else "false")
        child.observe(max(0.0, edge_s - upstream_us / 1e6))

    def observe_first_byte(self, route: str, seconds: float) -> None:
        self._child(self.first_byte_overhead, route).observe(seconds)


# uuid.uuid4().hex without the UUID object (~5x cheaper): 16 random bytes with the version (4) and the
# RFC 4122 variant bits set
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A request id for a request that brought none: a random version-4 UUID in hex, as ``uuid4().hex``."""
    return f"{int.from_bytes(os.urandom(16)) & _V4_CLEAR | _V4_SET:032x}"
