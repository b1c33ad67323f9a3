"""Prometheus: one registry per process, built in ``main()`` and passed down (no global default registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["new_registry", "serve_metrics"]


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
