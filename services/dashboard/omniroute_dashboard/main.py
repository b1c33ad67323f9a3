"""``omniroute-dashboard``: read the settings, configure JSON logs, serve the app with uvicorn on uvloop."""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn

from omniroute_core.heap import freeze_startup_heap
from omniroute_core.logging import configure_logging
from omniroute_core.metrics import serve_metrics
from omniroute_dashboard.app import create_app
from omniroute_dashboard.context import StartupError, build_cipher
from omniroute_dashboard.metrics import DashboardMetrics
from omniroute_dashboard.settings import DashboardSettings

__all__ = ["main"]

log = logging.getLogger("omniroute_dashboard")


class _Server(uvicorn.Server):
    """uvicorn's server, which freezes the start-up heap once the lifespan has started and the port is bound."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            freeze_startup_heap("dashboard")


def main() -> None:
    """Exit status 2 when the configuration is unusable (e.g. no ``OMNIROUTE_ENCRYPTION_KEY``)."""
    settings = DashboardSettings()
    configure_logging("dashboard", settings.log_level)
    try:
        build_cipher(settings)  # checked here too, so a bad key fails before any port is bound
    except StartupError as exc:
        log.error("refusing to start: %s", exc)
        sys.exit(2)
    metrics = DashboardMetrics.create()
    serve_metrics(metrics.registry, settings.bind_host, settings.metrics_port)
    config = uvicorn.Config(
        create_app(settings, metrics),
        host=settings.bind_host,
        port=settings.dashboard_port,
        loop="uvloop",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    _Server(config).run()


if __name__ == "__main__":
    main()
