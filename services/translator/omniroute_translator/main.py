"""``omniroute-translator``: the gRPC translator service."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from omniroute_core.grpcx import Server
from omniroute_core.heap import freeze_startup_heap
from omniroute_core.logging import configure_logging
from omniroute_core.metrics import new_registry, serve_metrics
from omniroute_translator.codecs import CODECS
from omniroute_translator.metrics import TranslatorMetrics
from omniroute_translator.server import SERVICE_NAME, TranslatorService, add_to_server
from omniroute_translator.settings import TranslatorSettings
from omniroute_translator.tokens import Tokenizers

__all__ = ["main", "serve"]

log = logging.getLogger(__name__)


async def serve(settings: TranslatorSettings, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then drain: health goes NOT_SERVING and in-flight calls get 5 s to finish."""
    registry = new_registry()
    server = Server(f"{settings.bind_host}:{settings.translator_port}", [SERVICE_NAME], settings.translator_server)
    tokenizers = Tokenizers()
    add_to_server(TranslatorService(CODECS, TranslatorMetrics(registry), tokenizers), server.server)
    serve_metrics(registry, settings.bind_host, settings.metrics_port)
    await server.start()
    log.info(
        "translator serving",
        extra={"port": server.port, "server": settings.translator_server, "metrics_port": settings.metrics_port},
    )
    freeze_startup_heap("translator")
    # a CountTokens call arriving meanwhile waits for the table it needs, in its own worker thread
    warming = asyncio.create_task(asyncio.to_thread(tokenizers.warm)) if settings.warm_tokenizers else None
    await stop.wait()
    if warming is not None:
        warming.cancel()
    log.info("translator stopping")
    await server.stop(grace=5.0)


async def _run(settings: TranslatorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop)


def main() -> None:
    settings = TranslatorSettings()
    configure_logging("translator", settings.log_level)
    uvloop.run(_run(settings))


if __name__ == "__main__":
    main()
