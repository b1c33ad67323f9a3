"""Usage queries of the management API, in the shapes the dashboard serves (see services/usage/README.md).

Common filters (query parameters): ``keyId``, ``model``, ``provider``, ``connectionId``, ``from``/``to`` (ISO 8601
or Unix ms). Lists take ``limit`` (1-1000, default 100) and ``offset``, and ``status`` (an HTTP status, or
``success`` / ``error``). Summaries (history, per-connection) read the rollups; logs read raw events through the
``(ts)``, ``(key_id, ts)`` and ``(connection_id, ts)`` indexes within a time window (default: the last 24 hours).
Every SQL text is built from constants; values travel as bind parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import asyncpg

from omniroute_usage.api import BadRequest, param_int, param_window

__all__ = ["connection_usage", "request_logs", "telemetry_summary", "usage_history", "usage_logs"]

_GRAINS = {"minute": "minute", "hour": "hour", "day": "day"}
# a finer grain over a long range would return (and scan) too many buckets
_MAX_BUCKETS = {"minute": 24 * 60, "hour": 24 * 93, "day": 3660}
_TOKEN_SUMS = """
    coalesce(sum(requests), 0)::int8 AS requests, coalesce(sum(errors), 0)::int8 AS errors,
    coalesce(sum(input_tokens), 0)::int8 AS input_tokens, coalesce(sum(output_tokens), 0)::int8 AS output_tokens,
    coalesce(sum(cached_input_tokens), 0)::int8 AS cached_input_tokens,
    coalesce(sum(cache_creation_tokens), 0)::int8 AS cache_creation_tokens,
    coalesce(sum(reasoning_tokens), 0)::int8 AS reasoning_tokens,
    coalesce(sum(total_tokens), 0)::int8 AS total_tokens, coalesce(sum(cost_usd), 0) AS cost_usd,
    coalesce(sum(latency_ms), 0)::int8 AS latency_ms"""
# $1 since, $2 until, $3 key, $4 model, $5 provider, $6 connection (NULL = any)
_ROLLUP_FILTER = """bucket >= date_trunc('{unit}', $1::timestamptz, 'UTC') AND bucket < $2
    AND ($3::text IS NULL OR key_id = $3) AND ($4::text IS NULL OR model = $4)
    AND ($5::text IS NULL OR provider = $5) AND ($6::text IS NULL OR connection_id = $6)"""
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


def _totals(r: asyncpg.Record) -> dict[str, Any]:
    requests = int(r["requests"])
    return {
        "requests": requests,
        "errors": int(r["errors"]),
        "inputTokens": int(r["input_tokens"]),
        "outputTokens": int(r["output_tokens"]),
        "cachedInputTokens": int(r["cached_input_tokens"]),
        "cacheCreationTokens": int(r["cache_creation_tokens"]),
        "reasoningTokens": int(r["reasoning_tokens"]),
        "totalTokens": int(r["total_tokens"]),
        "cost": float(r["cost_usd"]),
        "avgLatencyMs": round(int(r["latency_ms"]) / requests, 1) if requests else 0.0,
    }


async def usage_history(pool: asyncpg.Pool, params: Mapping[str, str], now: dt.datetime) -> dict[str, Any]:
    """``{"granularity", "from", "to", "totals", "history": [{"time", ...totals}]}``, buckets with traffic only.

    ``granularity`` is ``minute``, ``hour`` (default) or ``day``; the default window is the last 24 hours.
    """
    grain = params.get("granularity") or params.get("period") or "hour"
    if grain not in _GRAINS:
        raise BadRequest("granularity: must be minute, hour or day", "granularity")
    since, until = param_window(params, now, dt.timedelta(hours=24))
    if (until - since) / dt.timedelta(**{f"{grain}s": 1}) > _MAX_BUCKETS[grain]:
        raise BadRequest(f"from: the range is too long for granularity {grain}", "from")
    where = _ROLLUP_FILTER.format(unit=_GRAINS[grain])
    args = (since, until, *_filters(params))
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT bucket, {_TOKEN_SUMS} FROM usage_rollup_{grain} WHERE {where} GROUP BY bucket ORDER BY bucket",  # noqa: S608
            *args,
        )
        total = await conn.fetchrow(f"SELECT {_TOKEN_SUMS} FROM usage_rollup_{grain} WHERE {where}", *args)  # noqa: S608
    assert total is not None
    return {
        "granularity": grain,
        "from": since.isoformat(),
        "to": until.isoformat(),
        "totals": _totals(total),
        "history": [{"time": r["bucket"].isoformat(), **_totals(r)} for r in rows],
    }


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
        total = await conn.fetchval(f"SELECT count(*) FROM usage_events WHERE {_EVENT_FILTER}", *args)  # noqa: S608
    return {"logs": [_event(r) for r in rows], "total": int(total), "limit": limit, "offset": offset}


# One row per request: the attempts sharing a request id (a fallback chain) grouped, the last attempt deciding
# provider, model and status; events without a request id stand alone.
_REQUESTS = f"""
WITH hits AS (SELECT * FROM usage_events WHERE {_EVENT_FILTER}),
grouped AS (
    SELECT CASE WHEN request_id = '' THEN 'event:' || event_id ELSE request_id END AS rid,
           min(ts) AS started, max(ts) AS ended, count(*) AS attempts,
           (array_agg(event_id ORDER BY attempt DESC, ts DESC))[1] AS last_event,
           sum(input_tokens)::int8 AS input_tokens, sum(output_tokens)::int8 AS output_tokens,
           sum(total_tokens)::int8 AS total_tokens, sum(cost_usd) AS cost_usd, sum(latency_ms)::int8 AS latency_ms
    FROM hits GROUP BY 1
)
SELECT g.*, e.key_id, e.provider, e.model, e.requested_model, e.connection_id, e.combo, e.status, e.error_type,
       e.ttft_ms, e.stream, e.endpoint, e.client_format, count(*) OVER () AS total
FROM grouped g JOIN usage_events e ON e.event_id = g.last_event
ORDER BY g.started DESC, g.rid LIMIT $9 OFFSET $10
"""  # noqa: S608
_REQUEST_COUNT = f"""
SELECT count(DISTINCT CASE WHEN request_id = '' THEN 'event:' || event_id ELSE request_id END)
FROM usage_events WHERE {_EVENT_FILTER}
"""  # noqa: S608


async def request_logs(pool: asyncpg.Pool, params: Mapping[str, str], now: dt.datetime) -> dict[str, Any]:
    """One entry per client request, newest first: ``{"requests": [...], "total", "limit", "offset"}``.

    Filters apply to attempts (``status=error`` lists requests with any failed attempt; each entry's ``status``
    is its last attempt's).
    """
    args, limit, offset = _list_args(params, now)
    rows = await pool.fetch(_REQUESTS, *args, limit, offset)
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
    # the window count rides on the page's rows; a page past the end has none, so count separately then
    total = int(rows[0]["total"]) if rows else (int(await pool.fetchval(_REQUEST_COUNT, *args)) if offset else 0)
    return {"requests": items, "total": total, "limit": limit, "offset": offset}


async def connection_usage(
    pool: asyncpg.Pool, connection_id: str, params: Mapping[str, str], now: dt.datetime
) -> dict[str, Any]:
    """``{"connectionId", "from", "to", "totals", "byModel": [...], "daily": [...]}`` from the day rollup; the
    default window is the last 30 days."""
    since, until = param_window(params, now, dt.timedelta(days=30))
    key, model, provider, _ = _filters(params)
    where = _ROLLUP_FILTER.format(unit="day")
    args = (since, until, key, model, provider, connection_id)
    async with pool.acquire() as conn:
        total = await conn.fetchrow(f"SELECT {_TOKEN_SUMS} FROM usage_rollup_day WHERE {where}", *args)  # noqa: S608
        by_model = await conn.fetch(
            f"SELECT provider, model, {_TOKEN_SUMS} FROM usage_rollup_day WHERE {where} "  # noqa: S608
            "GROUP BY provider, model ORDER BY cost_usd DESC, provider, model",
            *args,
        )
        daily = await conn.fetch(
            f"SELECT bucket, {_TOKEN_SUMS} FROM usage_rollup_day WHERE {where} GROUP BY bucket ORDER BY bucket",  # noqa: S608
            *args,
        )
    assert total is not None
    return {
        "connectionId": connection_id,
        "from": since.isoformat(),
        "to": until.isoformat(),
        "totals": _totals(total),
        "byModel": [{"provider": r["provider"], "model": r["model"], **_totals(r)} for r in by_model],
        "daily": [{"date": r["bucket"].date().isoformat(), **_totals(r)} for r in daily],
    }


async def telemetry_summary(pool: asyncpg.Pool, params: Mapping[str, str], now: dt.datetime) -> dict[str, Any]:
    """``{"providers": {name: {"p50", "p95", "p99", "count"}}, "windowMinutes"}``: latency percentiles in ms over
    the last ``window`` minutes (default 60, at most 1440) of stored events (every attempt, failed ones too)."""
    window = param_int(params, "window", 60, low=1, high=1440)
    rows = await pool.fetch(
        """
        SELECT provider, count(*) AS n,
               percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS p
        FROM usage_events WHERE ts >= $1 AND ts <= $2 GROUP BY provider ORDER BY provider
        """,
        now - dt.timedelta(minutes=window),
        now,
    )
    providers = {
        r["provider"] or "unknown": {"p50": r["p"][0], "p95": r["p"][1], "p99": r["p"][2], "count": int(r["n"])}
        for r in rows
    }
    return {"providers": providers, "windowMinutes": window}
