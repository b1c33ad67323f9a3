"""The dashboard's Prometheus metrics, on a per-process registry built in ``main()`` (or per test app)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from omniroute_core.metrics import new_registry

__all__ = ["DashboardMetrics"]


@dataclass(frozen=True, slots=True)
class DashboardMetrics:
    registry: CollectorRegistry
    logins: Counter
    publishes: Counter
    published_version: Gauge

    @classmethod
    def create(cls) -> DashboardMetrics:
        registry = new_registry()
        return cls(
            registry=registry,
            logins=Counter(
                "omniroute_dashboard_logins_total",
                "Dashboard login attempts by outcome (ok, denied, invalid)",
                ["outcome"],
                registry=registry,
            ),
            publishes=Counter(
                "omniroute_dashboard_config_publishes_total",
                "Config snapshot publication attempts by outcome (published, current, error)",
                ["outcome"],
                registry=registry,
            ),
            published_version=Gauge(
                "omniroute_dashboard_config_version_published",
                "Newest config version known to be in the NATS KV bucket",
                registry=registry,
            ),
        )
