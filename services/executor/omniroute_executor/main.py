"""Executor entry point: build settings and clients, serve gRPC until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import uvloop
from redis.asyncio import Redis

from omniroute.v1 import executor_pb2_grpc
from omniroute_core import events, grpcx
from omniroute_core.catalog import load_catalog
from omniroute_core.crypto import Cipher
from omniroute_core.heap import freeze_startup_heap
from omniroute_core.logging import configure_logging
from omniroute_core.metrics import new_registry, serve_metrics
from omniroute_core.snapshot_watcher import SnapshotWatcher
from omniroute_executor.admin import ProviderAdminServicer
from omniroute_executor.engine import Engine
from omniroute_executor.local import LocalEmbedder
from omniroute_executor.modalities import ModalityRunner
from omniroute_executor.prepare import Credentials
from omniroute_executor.resilience import HealthStore
from omniroute_executor.server import ExecutorServicer
from omniroute_executor.settings import ExecutorSettings
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream
from omniroute_executor.usage_events import UsagePublisher
from omniroute_executor.usage_spool import Spool

log = logging.getLogger("omniroute_executor")


async def serve(settings: ExecutorSettings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, then drain: NOT_SERVING, finish in-flight calls, flush usage events."""
    registry = new_registry()
    serve_metrics(registry, settings.bind_host, settings.metrics_port)
    nc = await events.connect(settings.nats_url, "executor")
    js = nc.jetstream()
    await events.ensure_usage_stream(js)
    watcher = SnapshotWatcher(js)
    await watcher.start()
    publisher = UsagePublisher(
        js,
        registry,
        queue_size=settings.usage_queue_size,
        spool=Spool(settings.spool_folder()),
        linger_s=settings.usage_publish_linger_s,
    )
    publisher.start()
    upstream = Upstream(
        max_connections=settings.upstream_max_connections,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.upstream_read_timeout_s,
        limits=settings.queue_limits(),
        allow_link_local=settings.allow_link_local_providers,
        registry=registry,
        client=settings.upstream_client,
    )
    translator_channel = grpcx.channel(settings.translator_addr, settings.translator_client)
    cipher = Cipher(settings.omniroute_encryption_key) if settings.omniroute_encryption_key else None
    if cipher is None:
        log.warning("OMNIROUTE_ENCRYPTION_KEY is not set: connections with credentials cannot be used")
    # short timeouts: breaker state is advisory, a slow Redis must not slow requests (the store falls back to local)
    redis = Redis.from_url(settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
    credentials = Credentials(cipher)
    local = LocalEmbedder(concurrency=settings.local_embedding_concurrency)
    health = HealthStore(redis)
    modalities = ModalityRunner(
        upstream,
        credentials,
        local,
        poll_interval_s=settings.transcription_poll_interval_s,
        max_wait_s=settings.transcription_max_wait_s,
        on_response=health.observe_response,
    )
    catalog = load_catalog()
    translator = TranslatorClient(translator_channel)
    engine = Engine(
        catalog=catalog,
        snapshot=lambda: watcher.current,
        credentials=credentials,
        upstream=upstream,
        translator=translator,
        publisher=publisher,
        health=health,
        modalities=modalities,
    )
    admin = ProviderAdminServicer(
        catalog=catalog,
        snapshot=lambda: watcher.current,
        credentials=credentials,
        upstream=upstream,
        translator=translator,
        timeout_s=settings.admin_call_timeout_s,
    )
    server = grpcx.Server(
        f"{settings.bind_host}:{settings.executor_port}",
        ["omniroute.v1.Executor", "omniroute.v1.ProviderAdmin"],
        settings.executor_server,
        max_connection_age_s=settings.grpc_max_connection_age_s,
    )
    servicer = ExecutorServicer(engine)
    executor_pb2_grpc.add_ExecutorServicer_to_server(servicer, server.server)
    executor_pb2_grpc.add_ProviderAdminServicer_to_server(admin, server.server)
    await server.start()
    log.info(
        "executor serving",
        extra={"port": server.port, "server": settings.executor_server, "config_version": watcher.current.version},
    )
    freeze_startup_heap("executor")
    try:
        await stop.wait()
    finally:
        await server.stop(grace=10)
        await servicer.drain()  # the last replies' usage events reach the publisher before it closes
        await publisher.close()
        await watcher.stop()
        await upstream.close()
        local.close()
        await translator_channel.close()
        await engine.health.close()
        await redis.aclose()
        with contextlib.suppress(Exception):
            await nc.drain()


def main() -> None:
    settings = ExecutorSettings()
    configure_logging("executor", settings.log_level)
    # before NumPy is first imported (by the local model, on first use): one BLAS thread per encode, so the
    # model's CPU is bounded by LOCAL_EMBEDDING_CONCURRENCY and never competes with the event loop's core
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    uvloop.run(run())


if __name__ == "__main__":
    main()
