"""``GET /api/cache`` (statistics in the API reference's shape) and ``DELETE /api/cache`` (clear every tier);
``GET/PUT /api/settings/cache``: which requests the caches may answer.

The caches live in the data plane (each edge's in-process tier, Redis for the shared tiers and idempotency);
this router reads and clears them through the Redis layout in :mod:`omniroute_core.cachekeys`. Edges report their
in-process tier size into Redis every second; reports older than :data:`STALE_S` (a stopped edge) are ignored.

The cache setting ``{"policy": "deterministic" | "always" | "never"}`` travels in the config snapshot (settings key
``cache``): ``deterministic`` (the default) caches only requests that pin temperature to 0, the one case where a
repeated answer is what the caller asked for. A key's own ``cachePolicy`` (``/api/keys``) overrides it, and an edge
started with ``CACHE_POLICY=never`` has no cache at all (an operator's switch that no setting turns back on).
"""

from __future__ import annotations

import time
from typing import Any, Literal, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from omniroute_core.cachekeys import (
    CACHE_CLEAR_CHANNEL,
    CACHE_INDEX,
    CACHE_MEMORY,
    CACHE_PREFIX,
    CACHE_STATS,
    IDEMPOTENCY_PREFIX,
)
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, config_change
from omniroute_dashboard.store import read_setting, write_setting
from omniroute_dashboard.web import json_response, parse_body

__all__ = ["router", "settings_router"]

router = APIRouter(prefix="/api/cache", dependencies=[Depends(require_admin)])
settings_router = APIRouter(prefix="/api/settings/cache", dependencies=[Depends(require_admin)])

_SETTING = "cache"
_DEFAULT_POLICY = "deterministic"


class _CacheSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: Literal["deterministic", "always", "never"]


STALE_S = 10


@router.get("")
async def cache_stats(ctx: ContextDep) -> Response:
    redis = ctx.redis
    memory_size = memory_max = 0
    now = time.time()
    reports = cast(dict[bytes, bytes], await redis.hgetall(CACHE_MEMORY))
    for report in reports.values():
        size, cap, at = (int(x) for x in report.decode().split("/"))
        if now - at <= STALE_S:
            memory_size += size
            memory_max += cap
    stats = cast(dict[bytes, bytes], await redis.hgetall(CACHE_STATS))
    hits, misses = int(stats.get(b"hits", 0)), int(stats.get(b"misses", 0))
    body: dict[str, Any] = {
        "semanticCache": {
            "memorySize": memory_size,
            "memoryMaxSize": memory_max,
            "dbSize": int(await redis.zcard(CACHE_INDEX)),
            "hitRate": round(hits / (hits + misses), 4) if hits + misses else 0.0,
        },
        "idempotency": {
            "activeKeys": await _count(ctx, f"{IDEMPOTENCY_PREFIX}:*", exclude_suffix=b":reply"),
            "windowMs": ctx.settings.idempotency_window_ms,
        },
    }
    return json_response(body)


@router.delete("")
async def clear_cache(ctx: ContextDep) -> Response:
    """Empty the shared tier and the statistics, and tell every edge to empty its in-process tier."""
    redis = ctx.redis
    removed = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{CACHE_PREFIX}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            removed += int(await redis.delete(*batch))
            batch.clear()
    if batch:
        removed += int(await redis.delete(*batch))
    await redis.delete(CACHE_INDEX, CACHE_STATS)
    await redis.publish(CACHE_CLEAR_CHANNEL, b"clear")
    return json_response({"success": True, "cleared": removed})


async def _count(ctx: ContextDep, pattern: str, *, exclude_suffix: bytes) -> int:
    count = 0
    async for key in ctx.redis.scan_iter(match=pattern, count=1000):
        if not key.endswith(exclude_suffix):
            count += 1
    return count


@settings_router.get("")
async def get_cache_setting(ctx: ContextDep) -> Response:
    async with ctx.pool.acquire() as conn:
        stored = await read_setting(conn, _SETTING)
    return json_response({"policy": stored.get("policy", _DEFAULT_POLICY)})


@settings_router.put("")
async def put_cache_setting(request: Request, ctx: ContextDep) -> Response:
    body = await parse_body(request, _CacheSetting)
    async with config_change(ctx) as conn:
        stored = await read_setting(conn, _SETTING, lock=True)
        stored.update(body.model_dump())
        await write_setting(conn, _SETTING, stored)
    return json_response({"policy": stored["policy"]})
