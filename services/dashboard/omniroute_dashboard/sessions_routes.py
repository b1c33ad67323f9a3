"""``GET /api/sessions``: the conversations active in the last 30 minutes, with request counts, by API key.

The edges record sessions in Redis (:mod:`omniroute_core.sessionkeys`; how a session is identified is the edge's
``sessions`` module). The reply follows OmniRoute's shape: ``count`` (active sessions), ``sessions`` (the most
recently active first, at most ``limit``), ``byApiKey`` (key id → active sessions; ``"-"`` for callers without a
key). ``?keyId=`` narrows ``count`` and ``sessions`` to one key.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from omniroute_core.sessionkeys import ANONYMOUS, SESSION_BY_KEY, SESSION_INDEX, SESSION_PREFIX, SESSION_TTL_MS
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep
from omniroute_dashboard.web import json_response

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", dependencies=[Depends(require_admin)])

_INT_FIELDS = ("createdAt", "lastActive", "requestCount")


@router.get("")
async def active_sessions(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    key_id: Annotated[str | None, Query(alias="keyId", min_length=1, max_length=200)] = None,
) -> Response:
    redis = ctx.redis
    now = int(time.time() * 1000)
    oldest = now - SESSION_TTL_MS
    key_ids = [str(r["id"]) for r in await ctx.pool.fetch("SELECT id FROM api_keys ORDER BY id")]
    owners = [*key_ids, ANONYMOUS]
    index = SESSION_INDEX if key_id is None else SESSION_BY_KEY + key_id
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(SESSION_INDEX, "-inf", oldest)
        for owner in owners:
            pipe.zremrangebyscore(SESSION_BY_KEY + owner, "-inf", oldest)
            pipe.zcard(SESSION_BY_KEY + owner)
        pipe.zcount(index, oldest, "+inf")
        pipe.zrevrangebyscore(index, "+inf", oldest, start=0, num=limit)
        results = await pipe.execute()
    counts = results[2 : 2 + 2 * len(owners) : 2]
    by_key = {owner: int(n) for owner, n in zip(owners, counts, strict=True) if n}
    total, ids = int(results[-2]), [m.decode() for m in cast(list[bytes], results[-1])]
    async with redis.pipeline(transaction=False) as pipe:
        for sid in ids:
            pipe.hgetall(SESSION_PREFIX + sid)
        rows = cast(list[dict[bytes, bytes]], await pipe.execute())
    sessions = [_session(sid, row, now) for sid, row in zip(ids, rows, strict=True) if row]
    return json_response({"count": total, "sessions": sessions, "byApiKey": by_key})


def _session(sid: str, row: dict[bytes, bytes], now: int) -> dict[str, Any]:
    fields = {k.decode(): v.decode() for k, v in row.items()}
    out: dict[str, Any] = {"sessionId": sid, "apiKeyId": fields.get("keyId") or None, "model": fields.get("model")}
    for name in _INT_FIELDS:
        out[name] = int(fields.get(name, 0))
    out["ageMs"] = max(0, now - out["createdAt"])
    return out
