"""Edge entry point: uvicorn (uvloop + httptools) serving the app on the public port."""

from __future__ import annotations

import uvicorn

from omniroute_core.logging import configure_logging
from omniroute_core.metrics import new_registry, serve_metrics
from omniroute_edge.app import create_app
from omniroute_edge.http_protocol import HttpProtocol
from omniroute_edge.settings import EdgeSettings


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
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
