"""Edge entry point: uvicorn (uvloop + httptools) serving the app on the public port."""

from __future__ import annotations

import socket

import uvicorn

from omniroute_core.heap import freeze_startup_heap
from omniroute_core.logging import configure_logging
from omniroute_core.metrics import new_registry, serve_metrics
from omniroute_edge.app import create_app
from omniroute_edge.http_protocol import HttpProtocol
from omniroute_edge.settings import EdgeSettings


class _Server(uvicorn.Server):
    """uvicorn's server, which freezes the start-up heap once the app's lifespan has started and the port is bound
    (here, not in the lifespan: apps built by in-process tests are not frozen)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            freeze_startup_heap("edge")


def main() -> None:
    settings = EdgeSettings()
    configure_logging("edge", settings.log_level)
    registry = new_registry()
    serve_metrics(registry, settings.bind_host, settings.metrics_port)
    trusted = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    config = uvicorn.Config(
        create_app(settings, registry),
        interface="asgi3",
        # X-Forwarded-For is believed only from TRUSTED_PROXIES (uvicorn's default also trusts 127.0.0.1, which
        # let any local process choose its address for the IP filter and per-IP limits); none: no middleware
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        host=settings.bind_host,
        port=settings.edge_port,
        loop="uvloop",
        http=HttpProtocol,  # uvicorn's httptools protocol, a reply's head and body in one write
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    _Server(config).run()


if __name__ == "__main__":
    main()
