"""Entry point of the usage service (``omniroute-usage``): wiring, startup and graceful shutdown.

Start: JSON logs, PostgreSQL migrations (component ``usage``), the asyncpg pool, NATS and the usage stream, the
durable consumer, the gRPC server (health SERVING) and the metrics endpoint. Stop, on SIGTERM or SIGINT: stop
fetching, store and acknowledge the batch in flight, report NOT_SERVING, finish in-flight calls, close.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import nats.errors
import uvloop
from nats.aio.client import Client as NATS

from omniroute.v1 import usage_pb2_grpc
from omniroute_core import events, grpcx
from omniroute_core.heap import freeze_startup_heap
from omniroute_core.logging import configure_logging
from omniroute_core.metrics import new_registry, serve_metrics
from omniroute_usage.budgets import BudgetWarner
from omniroute_usage.consumer import UsageWriter, WriterConfig
from omniroute_usage.metrics import WriterMetrics
from omniroute_usage.pricing import load_shipped
from omniroute_usage.pricing_db import PricingSource
from omniroute_usage.schema import migrate_usage
from omniroute_usage.server import SERVICE_NAME, UsageServicer
from omniroute_usage.settings import UsageSettings
from omniroute_usage.store import UsageStore, open_pool

__all__ = ["UsageService", "main"]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def _retry(what: str, connect: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    # at startup a backing server may still be coming up (make run, a Kubernetes rollout): wait for it a while
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.2
    while True:
        try:
            return await connect()
        except (
            OSError,
            TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
            asyncpg.InterfaceError,
            nats.errors.Error,
        ) as exc:
            if loop.time() + delay > deadline:
                raise
            log.warning("%s not reachable yet, retrying: %r", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        version = await migrate_usage(conn)
    finally:
        await conn.close()
    log.info("usage schema at version %d", version)


class UsageService:
    """The running service; build with :meth:`start`, end with :meth:`stop`. ``port`` is the bound gRPC port."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NATS,
        writer: UsageWriter,
        writer_task: asyncio.Task[None],
        server: grpcx.Server,
    ) -> None:
        self._pool = pool
        self._nc = nc
        self._writer = writer
        self.writer_task = writer_task
        self._server = server
        self.port = server.port

    @classmethod
    async def start(cls, settings: UsageSettings) -> UsageService:
        """Connect, migrate, subscribe and serve. Raises when PostgreSQL or NATS stay unreachable for
        ``startup_timeout_s``, or when the gRPC port cannot be bound."""
        timeout = settings.startup_timeout_s
        await _retry("PostgreSQL", lambda: _migrate(settings.database_url), timeout)
        pool = await _retry(
            "PostgreSQL", lambda: open_pool(settings.database_url, max_size=settings.pg_pool_size), timeout
        )
        nc: NATS | None = None
        try:
            nc = await _retry("NATS", lambda: events.connect(settings.nats_url, "omniroute-usage"), timeout)
            js = nc.jetstream()
            await events.ensure_usage_stream(js)
            store = UsageStore(pool)
            pricing = PricingSource(pool, load_shipped(), settings.pricing_refresh_s)
            registry = new_registry()
            metrics = WriterMetrics.create(registry)
            warner = BudgetWarner(pool, nc.publish, metrics.budget_warnings, settings.budget_warn_ratio)
            writer = UsageWriter(
                js,
                store,
                metrics,
                WriterConfig(
                    durable=settings.consumer_name,
                    batch_size=settings.batch_size,
                    batch_wait_s=settings.batch_wait_ms / 1000,
                    batch_linger_s=settings.batch_linger_ms / 1000,
                    ack_wait_s=settings.ack_wait_s,
                ),
                pricing,
                warner,
            )
            sub = await writer.subscribe()
            server = grpcx.Server(f"{settings.bind_host}:{settings.usage_port}", [SERVICE_NAME])
            usage_pb2_grpc.add_UsageServiceServicer_to_server(
                UsageServicer(store, pricing, settings.budget_warn_ratio, warner), server.server
            )
            await server.start()
            serve_metrics(registry, settings.bind_host, settings.metrics_port)
        except BaseException:
            if nc is not None:
                await nc.close()
            await pool.close()
            raise
        task = asyncio.create_task(writer.run(sub), name="usage-writer")
        log.info("usage service serving", extra={"grpc_port": server.port, "metrics_port": settings.metrics_port})
        freeze_startup_heap("usage")
        return cls(pool, nc, writer, task, server)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish the batch in flight, report NOT_SERVING and drain gRPC calls, then close NATS and PostgreSQL."""
        self._writer.stop()
        try:
            await self.writer_task
        except Exception:
            log.exception("usage writer had failed")
        await self._server.stop(grace_s)
        # drain flushes the acks of the last batch before closing
        try:
            await self._nc.drain()
        except nats.errors.Error as exc:
            log.warning("nats drain failed: %s", exc)
        await self._pool.close()


async def _serve(settings: UsageSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await UsageService.start(settings)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({stopped, service.writer_task}, return_when=asyncio.FIRST_COMPLETED)
    # the writer only ends on its own through a bug; exit non-zero so a supervisor restarts us
    code = 0 if stop.is_set() else 1
    if code:
        log.error("usage writer ended unexpectedly; stopping")
    stopped.cancel()
    await service.stop()
    log.info("usage service stopped")
    return code


def main() -> None:
    settings = UsageSettings()
    configure_logging("usage", settings.log_level)
    sys.exit(uvloop.run(_serve(settings)))


if __name__ == "__main__":
    main()
