"""Edge entry point: uvicorn (uvloop + httptools) serving the app on the public port."""

from __future__ import annotations

import uvicorn

from omniroute_core.logging import configure_logging
from omniroute_core.metrics import new_registry, serve_metrics
from omniroute_edge.app import create_app
from omniroute_edge.settings import EdgeSettings


def main() -> None:
    settings = EdgeSettings()
    configure_logging("edge", settings.log_level)
    registry = new_registry()
    serve_metrics(registry, settings.bind_host, settings.metrics_port)
    config = uvicorn.Config(
        create_app(settings, registry),
        host=settings.bind_host,
        port=settings.edge_port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
