"""The FastAPI application: routers, error envelope, ``/metrics`` and the lifespan that owns every client.

The lifespan refuses to start without a usable encryption key, migrates the schema, makes sure an admin password
exists, starts the config publisher, bumps the config version once so the current database state is announced
(waiting up to ``PUBLISH_WAIT_S`` for it, not at all when NATS is down), and only then serves. Everything it
builds is closed on the way out.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from starlette.types import ASGIApp, Receive, Scope, Send

from omniroute_core.logging import REQUEST_ID
from omniroute_dashboard import (
    aliases,
    audit,
    auth,
    availability,
    cache_routes,
    combos,
    keys,
    model_catalog,
    provider_admin,
    provider_models,
    provider_nodes,
    providers,
    proxy_check,
    proxy_settings,
    resilience,
    routing_settings,
    sessions_routes,
    system,
    usage_routes,
)
from omniroute_dashboard.audit import AuditMiddleware, ensure_audit_schema
from omniroute_dashboard.context import Context, build_cipher
from omniroute_dashboard.credentials import announce_generated_password, ensure_admin_password
from omniroute_dashboard.executor_admin import client_router as executor_admin_client
from omniroute_dashboard.guard_settings import ip_filter_router, rate_limit_router
from omniroute_dashboard.metrics import DashboardMetrics
from omniroute_dashboard.publish import Publisher
from omniroute_dashboard.request_settings import system_prompt_router, thinking_budget_router
from omniroute_dashboard.routing_store import ensure_routing_schema
from omniroute_dashboard.schema import ensure_schema
from omniroute_dashboard.settings import DashboardSettings
from omniroute_dashboard.store import bump_version, create_pool
from omniroute_dashboard.web import install_error_handlers

__all__ = ["create_app"]


class _RequestId:
    """Plain ASGI middleware: the caller's ``x-request-id`` (or a new one) goes into every log line."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")[:128]
        token = REQUEST_ID.set(given or uuid.uuid4().hex)
        try:
            await self._app(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)


def create_app(settings: DashboardSettings, metrics: DashboardMetrics | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan runs. ``metrics`` defaults to a fresh registry."""
    registry_metrics = metrics or DashboardMetrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cipher = build_cipher(settings)
        await ensure_schema(settings.database_url)
        await ensure_audit_schema(settings.database_url)
        await ensure_routing_schema(settings.database_url)
        await provider_admin.ensure_provider_test_schema(settings.database_url)
        pool = await create_pool(settings.database_url, settings.db_pool_size)
        publisher = Publisher(pool, settings.nats_url, registry_metrics)
        redis = Redis.from_url(settings.redis_url)
        try:
            generated = await ensure_admin_password(pool, settings)
            if generated is not None:
                announce_generated_password(generated, settings.omniroute_data_dir)
            publisher.start()
            async with pool.acquire() as conn, conn.transaction():
                version = await bump_version(conn)
            await publisher.announce(version, settings.publish_wait_s)
            app.state.ctx = Context(settings, pool, cipher, publisher, registry_metrics, redis)
            yield
        finally:
            await redis.aclose()
            await publisher.stop()
            await pool.close()

    app = FastAPI(title="OmniRoute dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(_RequestId)
    app.include_router(system.router)
    app.include_router(auth.router)
    app.include_router(executor_admin_client)
    app.include_router(providers.router)
    app.include_router(provider_admin.router)
    app.include_router(keys.router)
    app.include_router(combos.router)
    app.include_router(resilience.router)
    app.include_router(routing_settings.router)
    app.include_router(proxy_settings.router)
    app.include_router(cache_routes.router)
    app.include_router(cache_routes.settings_router)
    app.include_router(proxy_check.router)
    app.include_router(sessions_routes.router)
    app.include_router(ip_filter_router)
    app.include_router(rate_limit_router)
    app.include_router(audit.router)
    app.include_router(usage_routes.router)
    app.include_router(aliases.router)
    app.include_router(model_catalog.router)
    app.include_router(availability.router)
    app.include_router(availability.rate_limits_router)
    app.include_router(provider_nodes.router)
    app.include_router(provider_models.router)
    app.include_router(system_prompt_router)
    app.include_router(thinking_budget_router)
    app.include_router(system.fallback)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry_metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
