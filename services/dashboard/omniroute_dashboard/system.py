"""Public probes (``/api/monitoring/health``, ``/api/init``) and the guarded fallback for unknown ``/api/*``."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep
from omniroute_dashboard.credentials import has_password
from omniroute_dashboard.web import ApiError, json_response

__all__ = ["fallback", "router"]

log = logging.getLogger(__name__)

router = APIRouter()

# Included last: an unknown /api/* path answers 401 to strangers (no probing of what exists) and 404 to admins.
fallback = APIRouter(dependencies=[Depends(require_admin)])


@router.get("/api/monitoring/health")
async def health(ctx: ContextDep) -> Response:
    """200 ``{"status": "ok", ...}`` while PostgreSQL answers (NATS being down only delays config propagation,
    so it is reported but does not fail the check); 503 ``{"status": "degraded"}`` otherwise."""
    try:
        async with asyncio.timeout(2.0):
            await ctx.pool.fetchval("SELECT 1")
        database = True
    except Exception:  # any failure (timeout, refused, asyncpg's own errors) means "not answering"
        log.warning("health check: PostgreSQL does not answer", exc_info=True)
        database = False
    body = {
        "status": "ok" if database else "degraded",
        "service": "dashboard",
        "database": "ok" if database else "unavailable",
        "nats": "connected" if ctx.publisher.connected else "disconnected",
        "configVersion": ctx.publisher.published_version,
    }
    return json_response(body, status=200 if database else 503)


@router.get("/api/init")
async def init(ctx: ContextDep) -> Response:
    """First-run check for the web UI: whether an admin password exists (login is always required)."""
    return json_response({"initialized": await has_password(ctx.pool, ctx.settings), "requireLogin": True})


@fallback.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def unknown(rest: str) -> Response:
    raise ApiError(404, f"Unknown endpoint: /api/{rest}")
