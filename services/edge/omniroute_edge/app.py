"""The edge application: the route table mounted on one relay, health, and the control-plane forwarder.

Everything stateful (NATS, gRPC channels, the snapshot watcher, the dashboard client) is built in the lifespan
and handed to requests through the lifespan state, never through module globals.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import redis.asyncio as aioredis
from fastapi import FastAPI
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from omniroute.v1 import executor_pb2_grpc, translator_pb2_grpc, usage_pb2_grpc
from omniroute_core import events, grpcx, jsonx
from omniroute_core.snapshot_watcher import SnapshotWatcher
from omniroute_edge.budget import BudgetGuard, BudgetMetrics
from omniroute_edge.cache import ExactCache
from omniroute_edge.dashboard_proxy import DashboardProxy
from omniroute_edge.dispatch import DataPlaneDispatcher, Mount
from omniroute_edge.errors import ErrorRenderer
from omniroute_edge.guards import GuardMetrics, Guards
from omniroute_edge.idempotency import Idempotency
from omniroute_edge.ipfilter import IpFilter, parse_networks
from omniroute_edge.ratelimit import RateLimiter
from omniroute_edge.relay import EdgeContext, EdgeMetrics, Relay
from omniroute_edge.replay import ReplayPolicy
from omniroute_edge.routes import ROUTES
from omniroute_edge.semantic import build_semantic_cache
from omniroute_edge.sessions import SessionTracker
from omniroute_edge.settings import EdgeSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)
_PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _executor_channel(settings: EdgeSettings) -> grpc.aio.Channel:
    """The channel of the hop every data-plane request takes (settings.executor_client chooses the client)."""
    return grpcx.channel(settings.executor_addr, settings.executor_client)


def create_app(settings: EdgeSettings, registry: CollectorRegistry) -> DataPlaneDispatcher:
    """The edge's ASGI app: the data-plane dispatcher in front of the IP filter and the FastAPI app."""
    metrics = EdgeMetrics(registry)
    guard_metrics = GuardMetrics(registry)
    budget_metrics = BudgetMetrics(registry)
    trusted = parse_networks(p for p in settings.trusted_proxies.split(",") if p.strip())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        nc = await events.connect(settings.nats_url, "edge")
        watcher = SnapshotWatcher(nc.jetstream())
        await watcher.start()
        executor_channel = _executor_channel(settings)
        translator_channel = grpcx.channel(settings.translator_addr, settings.translator_client)
        usage_channel = grpcx.insecure_channel(settings.usage_addr)
        proxy = DashboardProxy(settings.dashboard_url)
        redis = aioredis.from_url(settings.redis_url)
        cache = (
            None
            if settings.cache_policy == "never"
            else ExactCache(
                redis, ttl_s=settings.cache_ttl_s, memory_max=settings.cache_memory_max, db_max=settings.cache_db_max
            )
        )
        if cache is not None:
            await cache.start()
        executor = executor_pb2_grpc.ExecutorStub(executor_channel)
        semantic = (
            None
            if cache is None
            else await build_semantic_cache(settings, cache, executor, lambda: watcher.current, registry)
        )
        sessions = SessionTracker(redis)
        await sessions.start()
        replay = ReplayPolicy(
            idempotency=Idempotency(
                redis, window_ms=settings.idempotency_window_ms, max_wait_s=settings.request_timeout_s
            ),
            cache=cache,
            cache_policy=settings.cache_policy,
            max_stored_bytes=settings.replay_max_bytes,
            semantic=semantic,
        )
        budgets = BudgetGuard(
            usage_pb2_grpc.UsageServiceStub(usage_channel),
            budget_metrics,
            ttl_s=settings.budget_cache_ttl_s,
            timeout_s=settings.budget_check_timeout_s,
        )

        async def on_budget_state(msg: Msg) -> None:
            try:
                key_id = jsonx.loads(msg.data)["keyId"]
            except (jsonx.JSONDecodeError, KeyError, TypeError):
                log.warning("ignoring a malformed budget state notice")
                return
            budgets.invalidate(str(key_id))

        budget_sub = await nc.subscribe(events.BUDGET_STATE_SUBJECT, cb=on_budget_state)
        ctx = EdgeContext(
            snapshot=lambda: watcher.current,
            executor=executor,
            errors=ErrorRenderer(translator_pb2_grpc.TranslatorStub(translator_channel)),
            metrics=metrics,
            require_api_key=settings.require_api_key,
            max_body_bytes=settings.max_body_bytes,
            request_timeout_s=settings.request_timeout_s,
            replay=replay,
            guards=Guards(
                # a slot leaked by a crashed edge frees itself a minute after the longest possible request
                RateLimiter(redis, inflight_ttl_ms=int((settings.request_timeout_s + 60) * 1000)),
                budgets,
                guard_metrics,
            ),
            sessions=sessions,
        )
        log.info("edge ready", extra={"config_version": watcher.current.version})
        try:
            yield {"edge": ctx, "proxy": proxy, "watcher": watcher}
        finally:
            with contextlib.suppress(Exception):
                await budget_sub.unsubscribe()
            await sessions.stop()
            if semantic is not None:
                await semantic.stop()
            if cache is not None:
                await cache.stop()
            await redis.aclose()
            await proxy.close()
            await watcher.stop()
            await executor_channel.close()
            await translator_channel.close()
            await usage_channel.close()
            with contextlib.suppress(Exception):
                await nc.drain()

    app = FastAPI(title="OmniRoute edge", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    # the data plane: each route once in FastAPI's router (what the dispatcher does not take is answered there,
    # exactly as before) and once in the dispatcher that serves it without entering FastAPI
    mounts = [Mount(route.path, route.methods, Relay(route)) for route in ROUTES]
    for mount in mounts:
        app.router.routes.append(StarletteRoute(mount.path, mount.app, methods=list(mount.methods)))

    async def health(request: Request) -> Response:
        watcher: SnapshotWatcher = request.state.watcher
        body = jsonx.dumps({"status": "ok", "configVersion": watcher.current.version})
        return Response(body, media_type="application/json")

    async def forward(request: Request) -> Response:
        proxy: DashboardProxy = request.state.proxy
        return await proxy.forward(request)

    app.add_route("/health", health, methods=["GET"])
    app.add_route("/api/{path:path}", forward, methods=_PROXY_METHODS)
    app.add_route("/dashboard", forward, methods=_PROXY_METHODS)
    app.add_route("/dashboard/{path:path}", forward, methods=_PROXY_METHODS)
    ip_filter = IpFilter(app, trusted=trusted, routes=ROUTES)
    return DataPlaneDispatcher(ip_filter, mounts, ip_filter.admit)
