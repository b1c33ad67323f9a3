"""The summary queries agree with the events whichever table serves them: rollups with raw partial edges, raw
fallbacks, request pages widened past their first candidates, and the latency histogram."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import asyncpg

from omniroute_usage import queries
from omniroute_usage.store import UsageStore, event_row
from omniroute_usage.testing import make_event

NOW = dt.datetime(2026, 3, 4, 12, 30, 15, tzinfo=dt.UTC)


async def _load(store: UsageStore, n: int = 600, span: dt.timedelta = dt.timedelta(hours=30)) -> None:
    rng = random.Random(7)
    rows = []
    for i in range(n):
        ts = NOW - span * rng.random()
        event = make_event(
            rng.choice(["openai", "anthropic"]),
            i,
            ts_unix_ms=int(ts.timestamp() * 1000),
            key_id=f"key-{i % 3}",
            connection_id=f"conn-{i % 2}",
            model=rng.choice(["m1", "m2"]),
            # every fifth request is a chain of two attempts, the first failed
            request_id=f"chain-{i // 2}" if i % 10 < 2 else f"req-{i}",
            attempt=2 if i % 10 == 1 else 1,
            status=502 if i % 10 == 0 else 200,
            latency_ms=int(rng.lognormvariate(6.5, 0.6)),
        )
        rows.append(event_row(event, event.event_id, NOW, Decimal("0.001")))
    await store.insert_batch(rows)


async def test_totals_and_history_match_the_events(store: UsageStore, pool: asyncpg.Pool) -> None:
    await _load(store)
    since = NOW - dt.timedelta(hours=20, minutes=17, seconds=3)
    window = {"from": since.isoformat(), "to": NOW.isoformat()}
    for extra in ({}, {"keyId": "key-1"}, {"connectionId": "conn-0"}, {"provider": "openai", "model": "m1"}):
        for status in ("", "error", "success", "502"):
            params = {**window, **extra, **({"status": status} if status else {})}
            logs = await queries.usage_logs(pool, params, NOW)
            column = {"keyId": "key_id", "connectionId": "connection_id", "provider": "provider", "model": "model"}
            where = " AND ".join(f"{column[k]} = '{v}'" for k, v in extra.items()) or "true"
            failed = "(status >= 400 OR error_type <> '')"
            cond = {"": "true", "error": failed, "success": f"NOT {failed}", "502": "status = 502"}[status]
            expected = await pool.fetchval(
                f"SELECT count(*) FROM usage_events WHERE ts >= $1 AND ts < $2 AND {where} AND {cond}", since, NOW
            )
            assert logs["total"] == expected, (extra, status)
        for grain in ("minute", "hour", "day"):
            if grain == "minute":
                params = {**extra, "granularity": grain, "from": (NOW - dt.timedelta(hours=23)).isoformat()}
            else:
                params = {**extra, "granularity": grain, "from": (NOW - dt.timedelta(days=3)).isoformat()}
            history = await queries.usage_history(pool, params, NOW)
            assert history["totals"]["requests"] == sum(b["requests"] for b in history["history"])
            start = dt.datetime.fromisoformat(history["from"])
            bucket_start = await pool.fetchval("SELECT date_trunc($1, $2::timestamptz, 'UTC')", grain, start)
            expected = await pool.fetchval(
                f"SELECT count(*) FROM usage_events WHERE ts >= $1 AND ts < $2 AND {where}", bucket_start, NOW
            )
            assert history["totals"]["requests"] == expected, (extra, grain)


async def test_request_pages_are_exact_beyond_the_first_candidates(store: UsageStore, pool: asyncpg.Pool) -> None:
    await _load(store)
    window = {"from": (NOW - dt.timedelta(days=2)).isoformat(), "to": NOW.isoformat()}
    expected = await pool.fetch(
        """
        SELECT request_id, min(ts) AS started, count(*) AS attempts FROM usage_events
        GROUP BY request_id ORDER BY started DESC, request_id
        """
    )
    pages = []
    for offset in range(0, len(expected), 70):
        page = await queries.request_logs(pool, {**window, "limit": "70", "offset": str(offset)}, NOW)
        assert page["total"] == len(expected)
        pages.extend(page["requests"])
    assert [(r["requestId"], r["attempts"]) for r in pages] == [(r["request_id"], r["attempts"]) for r in expected]
    chain = next(r for r in pages if r["attempts"] == 2)
    assert chain["status"] == 200  # the last attempt decides


async def test_long_telemetry_windows_are_within_five_percent(store: UsageStore, pool: asyncpg.Pool) -> None:
    await _load(store, n=2000, span=dt.timedelta(hours=20))
    summary = await queries.telemetry_summary(pool, {"window": "1000"}, NOW)
    exact = await pool.fetch(
        """
        SELECT provider, count(*) AS n,
               percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS p
        FROM usage_events WHERE ts >= $1 AND ts <= $2 GROUP BY provider
        """,
        NOW - dt.timedelta(minutes=1000),
        NOW,
    )
    assert set(summary["providers"]) == {r["provider"] for r in exact}
    for r in exact:
        got = summary["providers"][r["provider"]]
        assert got["count"] == r["n"]
        for name, value in zip(("p50", "p95", "p99"), r["p"], strict=True):
            assert abs(got[name] - value) <= 0.05 * value + 1, (r["provider"], name, got[name], value)
