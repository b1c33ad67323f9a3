"""``GET /api/cache`` (statistics in the API reference's shape) and ``DELETE /api/cache`` (clear every tier).

The caches live in the data plane (each edge's in-process tier, Redis for the shared tiers and idempotency);
this router reads and clears them through the Redis layout in :mod:`omniroute_core.cachekeys`. Edges report their
in-process tier size into Redis every second; reports older than :data:`STALE_S` (a stopped edge) are ignored.
"""

from __future__ import annotations

import time
from typing import Any, cast

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from omniroute_core.cachekeys import (
    CACHE_CLEAR_CHANNEL,
    CACHE_INDEX,
    CACHE_MEMORY,
    CACHE_PREFIX,
    CACHE_STATS,
    IDEMPOTENCY_PREFIX,
)
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep
from omniroute_dashboard.web import json_response

__all__ = ["router"]

router = APIRouter(prefix="/api/cache", dependencies=[Depends(require_admin)])

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
