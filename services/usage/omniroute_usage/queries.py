"""Usage queries of the management API, in the shapes the dashboard serves (see services/usage/README.md).

Common filters (query parameters): ``keyId``, ``model``, ``provider``, ``connectionId``, ``from``/``to`` (ISO 8601
or Unix ms). Lists take ``limit`` (1-1000, default 100) and ``offset``, and ``status`` (an HTTP status, or
``success`` / ``error``). Summaries (history, per-connection) read the rollups; logs read raw events through the
``(ts)``, ``(key_id, ts)`` and ``(connection_id, ts)`` indexes within a time window (default: the last 24 hours).
Every SQL text is built from constants; values travel as bind parameters.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from omniroute_usage.api import BadRequest, param_int, param_window
from omniroute_usage.logs import request_logs, usage_logs
from omniroute_usage.rollups import LATENCY_BASE, latency_class_sql, pick

__all__ = ["connection_usage", "request_logs", "telemetry_summary", "usage_history", "usage_logs"]

# the log queries live in omniroute_usage.logs; re-exported here with the other management queries
_ = (request_logs, usage_logs)

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
# the same sums over raw events, for the filters no rollup holds (a minute history of one key or connection)
_EVENT_SUMS = """
    count(*)::int8 AS requests, count(*) FILTER (WHERE status >= 400 OR error_type <> '')::int8 AS errors,
    sum(input_tokens)::int8 AS input_tokens, sum(output_tokens)::int8 AS output_tokens,
    sum(cached_input_tokens)::int8 AS cached_input_tokens, sum(cache_creation_tokens)::int8 AS cache_creation_tokens,
    sum(reasoning_tokens)::int8 AS reasoning_tokens, sum(total_tokens)::int8 AS total_tokens,
    sum(cost_usd) AS cost_usd, sum(latency_ms)::int8 AS latency_ms"""
_TOTAL_FIELDS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "latency_ms",
)
_Row = Mapping[str, Any] | asyncpg.Record
_DIM_PARAMS = (("key_id", "keyId"), ("model", "model"), ("provider", "provider"), ("connection_id", "connectionId"))


def _dims(params: Mapping[str, str]) -> dict[str, str]:
    """The dimension filters present in ``params``, by column."""
    return {column: params[name] for column, name in _DIM_PARAMS if params.get(name)}


async def _summary(
    pool: asyncpg.Pool,
    unit: str,
    dims: Mapping[str, str],
    group: tuple[str, ...],
    since: dt.datetime,
    until: dt.datetime,
) -> list[asyncpg.Record]:
    """Sums per ``(bucket, *group)`` at ``unit`` for events matching ``dims`` in ``[since's bucket, until)``, from
    the smallest rollup holding those dimensions, else (no rollup has them at that grain) from the events."""
    rollup = pick(unit, set(dims) | set(group))
    if rollup is None:
        source, bucket, sums = "usage_events", f"date_trunc('{unit}', ts, 'UTC')", _EVENT_SUMS
        where = [f"ts >= date_trunc('{unit}', $1::timestamptz, 'UTC')", "ts < $2"]
    else:
        source, bucket, sums = rollup.table, "bucket", _TOKEN_SUMS
        where = [f"bucket >= date_trunc('{unit}', $1::timestamptz, 'UTC')", "bucket < $2"]
    args: list[object] = [since, until]
    for column, value in dims.items():
        args.append(value)
        where.append(f"{column} = ${len(args)}")
    keys = ", ".join(("b", *group))
    sql = f"SELECT {bucket} AS b, {', '.join(group) + ',' if group else ''} {sums} FROM {source} "  # noqa: S608
    sql += f"WHERE {' AND '.join(where)} GROUP BY {keys} ORDER BY {keys}"
    return await pool.fetch(sql, *args)


def _add(rows: Iterable[_Row]) -> dict[str, Any]:
    total: dict[str, Any] = dict.fromkeys(_TOTAL_FIELDS, 0)
    for r in rows:
        for field in _TOTAL_FIELDS:
            total[field] += r[field]
    return total


def _totals(r: _Row) -> dict[str, Any]:
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
    rows = await _summary(pool, _GRAINS[grain], _dims(params), (), since, until)
    return {
        "granularity": grain,
        "from": since.isoformat(),
        "to": until.isoformat(),
        "totals": _totals(_add(rows)),
        "history": [{"time": r["b"].isoformat(), **_totals(r)} for r in rows],
    }


async def connection_usage(
    pool: asyncpg.Pool, connection_id: str, params: Mapping[str, str], now: dt.datetime
) -> dict[str, Any]:
    """``{"connectionId", "from", "to", "totals", "byModel": [...], "daily": [...]}`` from the day rollup; the
    default window is the last 30 days."""
    since, until = param_window(params, now, dt.timedelta(days=30))
    dims = {**_dims(params), "connection_id": connection_id}
    rows = await _summary(pool, "day", dims, ("provider", "model"), since, until)
    models: dict[tuple[str, str], list[asyncpg.Record]] = {}
    days: dict[dt.datetime, list[asyncpg.Record]] = {}
    for r in rows:
        models.setdefault((r["provider"], r["model"]), []).append(r)
        days.setdefault(r["b"], []).append(r)
    by_model = sorted(
        ({"provider": p, "model": m, **_add(group)} for (p, m), group in models.items()),
        key=lambda t: (-t["cost_usd"], t["provider"], t["model"]),
    )
    return {
        "connectionId": connection_id,
        "from": since.isoformat(),
        "to": until.isoformat(),
        "totals": _totals(_add(rows)),
        "byModel": [{"provider": t["provider"], "model": t["model"], **_totals(t)} for t in by_model],
        "daily": [{"date": b.date().isoformat(), **_totals(_add(group))} for b, group in days.items()],
    }


# up to this window, percentiles are exact (over the events, through the (ts) index); longer windows read the
# hourly latency histogram for their whole hours and class the events of their partial first and last hours, each
# percentile then within 5% of the exact one
_EXACT_TELEMETRY_MINUTES = 60
_PERCENTILES = (0.5, 0.95, 0.99)
_HISTOGRAM = f"""
SELECT provider, class, sum(n)::int8 AS n FROM (
    SELECT provider, class, n FROM usage_latency_hour WHERE bucket >= $3 AND bucket < $4
    UNION ALL
    SELECT provider, {latency_class_sql("latency_ms")}, 1 FROM usage_events WHERE ts >= $1 AND ts < $3
    UNION ALL
    SELECT provider, {latency_class_sql("latency_ms")}, 1 FROM usage_events WHERE ts >= $4 AND ts <= $2
) h GROUP BY provider, class ORDER BY provider, class
"""  # noqa: S608


def _from_histogram(classes: list[tuple[int, int]]) -> list[int]:
    """percentile_disc over a latency histogram: the geometric middle of the class holding each rank."""
    count = sum(n for _, n in classes)
    out = []
    for p in _PERCENTILES:
        rank = max(1, math.ceil(p * count))
        seen = 0
        for cls, n in classes:
            seen += n
            if seen >= rank:
                out.append(1 if cls == 0 else round(LATENCY_BASE ** (cls + 0.5)))
                break
    return out


async def telemetry_summary(pool: asyncpg.Pool, params: Mapping[str, str], now: dt.datetime) -> dict[str, Any]:
    """``{"providers": {name: {"p50", "p95", "p99", "count"}}, "windowMinutes"}``: latency percentiles in ms over
    the last ``window`` minutes (default 60, at most 1440) of stored events (every attempt, failed ones too).

    Windows up to an hour are exact; longer ones come mostly from the hourly histogram, percentiles within 5%."""
    window = param_int(params, "window", 60, low=1, high=1440)
    since = now - dt.timedelta(minutes=window)
    if window <= _EXACT_TELEMETRY_MINUTES:
        rows = await pool.fetch(
            """
            SELECT provider, count(*) AS n,
                   percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS p
            FROM usage_events WHERE ts >= $1 AND ts <= $2 GROUP BY provider ORDER BY provider
            """,
            since,
            now,
        )
        found = {r["provider"]: (int(r["n"]), list(r["p"])) for r in rows}
    else:
        hist: dict[str, list[tuple[int, int]]] = {}
        hi = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        lo = since.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        lo = lo if lo == since else lo + dt.timedelta(hours=1)
        if lo >= hi:
            lo = hi = now
        for r in await pool.fetch(_HISTOGRAM, since, now, lo, hi):
            hist.setdefault(r["provider"], []).append((int(r["class"]), int(r["n"])))
        found = {name: (sum(n for _, n in classes), _from_histogram(classes)) for name, classes in hist.items()}
    providers = {
        name or "unknown": {"p50": p[0], "p95": p[1], "p99": p[2], "count": n} for name, (n, p) in found.items()
    }
    return {"providers": providers, "windowMinutes": window}
