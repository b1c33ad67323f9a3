"""Prometheus: one registry per process, built in ``main()`` and passed down (no global default registry)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["LabelledChildren", "new_registry", "serve_metrics"]


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serve ``/metrics`` from a background thread (gRPC-only services); port 0 disables it."""
    if port:
        start_http_server(port, addr=host, registry=registry)


class LabelledChildren:
    """Each label set's child of a metric, looked up once and kept: ``labels()`` checks its arguments and takes a
    lock on every call, a few microseconds on a hot path. Only for label values drawn from a bounded set (routes,
    statuses, RPC and format names), as the children are never dropped."""

    __slots__ = ("_children",)

    def __init__(self) -> None:
        self._children: dict[tuple[Any, ...], Any] = {}

    def of(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child
