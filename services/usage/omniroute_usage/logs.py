"""The log queries of the management API: ``/api/usage/logs`` (one entry per attempt) and
``/api/usage/request-logs`` (one entry per request), newest first, filtered and paginated (see
:mod:`omniroute_usage.queries` for the parameters).

Pages come from the ``(ts)``, ``(key_id, ts)``, ``(provider, ts)`` and ``(connection_id, ts)`` indexes, newest
first, so the first pages read about ``offset + limit`` events whatever the window. Totals of events come from the
rollups for the whole buckets inside the window plus the events of its partial first and last buckets (raw events
only when a status code is filtered on). Request pages group the attempts of the newest events by request id
(``(request_id)`` index); the request total is the events total less the later attempts (``attempt > 1``) in the
window, which is the number of requests when a fallback chain's attempts share the window and the filters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from omniroute_usage.api import BadRequest, param_int, param_window
from omniroute_usage.rollups import pick

__all__ = ["request_logs", "usage_logs"]

_EVENT_FILTER = """ts >= $1 AND ts < $2
    AND ($3::text IS NULL OR key_id = $3) AND ($4::text IS NULL OR model = $4)
    AND ($5::text IS NULL OR provider = $5) AND ($6::text IS NULL OR connection_id = $6)
    AND ($7::int IS NULL OR status = $7)
    AND ($8::text IS NULL OR ($8 = 'error') = (status >= 400 OR error_type <> ''))"""


def _filters(params: Mapping[str, str]) -> tuple[str | None, str | None, str | None, str | None]:
    return (
        params.get("keyId") or None,
        params.get("model") or None,
        params.get("provider") or None,
        params.get("connectionId") or None,
    )


def _status(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    raw = params.get("status", "").strip().lower()
    if not raw:
        return None, None
    if raw in ("success", "error"):
        return None, raw
    if raw.isdigit() and 100 <= int(raw) <= 599:
        return int(raw), None
    raise BadRequest("status: must be an HTTP status (100-599), 'success' or 'error'", "status")


def _event(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["event_id"],
        "requestId": r["request_id"],
        "timestamp": r["ts"].isoformat(),
        "keyId": r["key_id"],
        "provider": r["provider"],
        "model": r["model"],
        "requestedModel": r["requested_model"],
        "connectionId": r["connection_id"],
        "combo": r["combo"],
        "status": r["status"],
        "errorType": r["error_type"],
        "latencyMs": r["latency_ms"],
        "ttftMs": r["ttft_ms"],
        "inputTokens": r["input_tokens"],
        "outputTokens": r["output_tokens"],
        "cachedInputTokens": r["cached_input_tokens"],
        "cacheCreationTokens": r["cache_creation_tokens"],
        "reasoningTokens": r["reasoning_tokens"],
        "totalTokens": r["total_tokens"],
        "cost": float(r["cost_usd"]),
        "stream": r["stream"],
        "attempt": r["attempt"],
        "endpoint": r["endpoint"],
        "clientFormat": r["client_format"],
    }


def _list_args(params: Mapping[str, str], now: dt.datetime) -> tuple[tuple[Any, ...], int, int]:
    since, until = param_window(params, now, dt.timedelta(hours=24))
    limit = param_int(params, "limit", 100, low=1, high=1000)
    offset = param_int(params, "offset", 0, low=0, high=1_000_000)
    return (since, until, *_filters(params), *_status(params)), limit, offset


_UNIT = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
_DIM_ARGS = (("key_id", 2), ("model", 3), ("provider", 4), ("connection_id", 5))  # positions in the list args


def _floor(t: dt.datetime, unit: str) -> dt.datetime:
    t = t.astimezone(dt.UTC)
    if unit == "minute":
        return t.replace(second=0, microsecond=0)
    if unit == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


async def _count_events(conn: asyncpg.Pool | PoolConnectionProxy, args: tuple[Any, ...], extra: str = "") -> int:
    """Events matching ``args`` (:func:`_list_args`) and the SQL condition ``extra``; see the module docstring."""
    raw = f"SELECT count(*) FROM usage_events WHERE {_EVENT_FILTER}{extra}"  # noqa: S608
    since, until, *_, code, kind = args
    dims = {column: args[i] for column, i in _DIM_ARGS if args[i] is not None}
    rollup = (
        None
        if extra or code is not None
        else next((r for r in (pick(u, set(dims)) for u in _UNIT) if r is not None), None)
    )
    if rollup is None:
        return int(await conn.fetchval(raw, *args))
    lo, hi = _floor(since, rollup.unit), _floor(until, rollup.unit)
    if lo < since:
        lo += _UNIT[rollup.unit]
    if lo >= hi:
        return int(await conn.fetchval(raw, *args))
    column = {None: "requests", "error": "errors", "success": "requests - errors"}[kind]
    where = " ".join(f"AND {c} = ${n}" for n, c in enumerate(dims, start=3))
    inner = await conn.fetchval(
        f"SELECT coalesce(sum({column}), 0)::int8 FROM {rollup.table} WHERE bucket >= $1 AND bucket < $2 {where}",  # noqa: S608
        lo,
        hi,
        *dims.values(),
    )
    first = await conn.fetchval(raw, since, lo, *args[2:])
    last = await conn.fetchval(raw, hi, until, *args[2:])
    return int(inner) + int(first) + int(last)


async def usage_logs(pool: asyncpg.Pool, params: Mapping[str, str], now: dt.datetime) -> dict[str, Any]:
    """One entry per stored event (each attempt), newest first: ``{"logs": [...], "total", "limit", "offset"}``."""
    args, limit, offset = _list_args(params, now)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT * FROM usage_events WHERE {_EVENT_FILTER} ORDER BY ts DESC, event_id LIMIT $9 OFFSET $10",  # noqa: S608
            *args,
            limit,
            offset,
        )
        total = await _count_events(conn, args)
    return {"logs": [_event(r) for r in rows], "total": total, "limit": limit, "offset": offset}


# One row per request: the attempts sharing a request id (a fallback chain) grouped, the last attempt deciding
# provider, model and status; events without a request id stand alone. The candidates are the newest $9 matching
# events; every request started after the oldest candidate has all its attempts among them, so a page of such
# requests is exact (else the caller widens the candidates).
_REQUESTS = f"""
WITH cand AS MATERIALIZED (
    SELECT event_id, request_id, ts FROM usage_events WHERE {_EVENT_FILTER} ORDER BY ts DESC LIMIT $9
),
edge AS (SELECT count(*) AS n, min(ts) AS oldest FROM cand),
hits AS (
    SELECT * FROM usage_events
    WHERE request_id <> '' AND request_id IN (SELECT request_id FROM cand WHERE request_id <> '')
        AND {_EVENT_FILTER}
    UNION ALL
    SELECT e.* FROM usage_events e JOIN cand c ON c.event_id = e.event_id WHERE c.request_id = ''
),
grouped AS (
    SELECT CASE WHEN request_id = '' THEN 'event:' || event_id ELSE request_id END AS rid,
           min(ts) AS started, max(ts) AS ended, count(*) AS attempts,
           (array_agg(event_id ORDER BY attempt DESC, ts DESC))[1] AS last_event,
           sum(input_tokens)::int8 AS input_tokens, sum(output_tokens)::int8 AS output_tokens,
           sum(total_tokens)::int8 AS total_tokens, sum(cost_usd) AS cost_usd, sum(latency_ms)::int8 AS latency_ms
    FROM hits GROUP BY 1
)
SELECT g.*, e.key_id, e.provider, e.model, e.requested_model, e.connection_id, e.combo, e.status, e.error_type,
       e.ttft_ms, e.stream, e.endpoint, e.client_format, (SELECT n FROM edge) AS candidates
FROM grouped g JOIN usage_events e ON e.event_id = g.last_event
WHERE (SELECT n FROM edge) < $9 OR g.started > (SELECT oldest FROM edge)
ORDER BY g.started DESC, g.rid LIMIT $10 OFFSET $11
"""  # noqa: S608
_CANDIDATES = f"SELECT count(*) FROM (SELECT 1 FROM usage_events WHERE {_EVENT_FILTER} LIMIT $9) c"  # noqa: S608
_LATER_ATTEMPTS = " AND attempt > 1 AND request_id <> ''"


async def request_logs(pool: asyncpg.Pool, params: Mapping[str, str], now: dt.datetime) -> dict[str, Any]:
    """One entry per client request, newest first: ``{"requests": [...], "total", "limit", "offset"}``.

    Filters apply to attempts (``status=error`` lists requests with any failed attempt; each entry's ``status``
    is its last attempt's).
    """
    args, limit, offset = _list_args(params, now)
    candidates = 2 * (offset + limit) + 50
    async with pool.acquire() as conn:
        while True:
            rows = await conn.fetch(_REQUESTS, *args, candidates, limit, offset)
            if len(rows) == limit:
                break
            # a short page is the end of the window only when the candidates were every matching event
            seen = int(rows[0]["candidates"]) if rows else int(await conn.fetchval(_CANDIDATES, *args, candidates))
            if seen < candidates:
                break
            candidates *= 4
        total = await _count_events(conn, args) - await _count_events(conn, args, _LATER_ATTEMPTS)
    items = [
        {
            "requestId": "" if r["rid"].startswith("event:") else r["rid"],
            "timestamp": r["started"].isoformat(),
            "keyId": r["key_id"],
            "provider": r["provider"],
            "model": r["model"],
            "requestedModel": r["requested_model"],
            "connectionId": r["connection_id"],
            "combo": r["combo"],
            "status": r["status"],
            "errorType": r["error_type"],
            "attempts": int(r["attempts"]),
            "latencyMs": int(r["latency_ms"]),
            "ttftMs": r["ttft_ms"],
            "inputTokens": int(r["input_tokens"]),
            "outputTokens": int(r["output_tokens"]),
            "totalTokens": int(r["total_tokens"]),
            "cost": float(r["cost_usd"]),
            "stream": r["stream"],
            "endpoint": r["endpoint"],
            "clientFormat": r["client_format"],
        }
        for r in rows
    ]
    return {"requests": items, "total": max(total, 0), "limit": limit, "offset": offset}
