"""Every rollup table and the latency histogram hold exactly the stored events, grouped by their bucket and
dimensions, whatever the batches held (several minutes, hours and days in one batch, repeats, several batches)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import asyncpg

from omniroute_usage.rollups import ROLLUPS, SUMS, latency_class_sql
from omniroute_usage.store import UsageStore, event_row
from omniroute_usage.testing import make_event

NOW = dt.datetime(2026, 3, 31, 23, 58, 30, tzinfo=dt.UTC)  # batches straddle a minute, an hour, a day, a month


def _rows(rng: random.Random, first: int, count: int) -> list[tuple[object, ...]]:
    rows = []
    for n in range(first, first + count):
        ts = NOW + dt.timedelta(seconds=rng.randrange(-200, 200))
        event = make_event(
            rng.choice(["openai", "anthropic"]),
            n,
            ts_unix_ms=int(ts.timestamp() * 1000),
            key_id=rng.choice(["k1", "k2", ""]),
            connection_id=rng.choice(["c1", "c2"]),
            model=rng.choice(["m1", "m2"]),
            status=rng.choice([200, 200, 200, 502]),
            error_type=rng.choice(["", "", "", "timeout"]),
            latency_ms=rng.randrange(0, 30_000),
        )
        rows.append(event_row(event, event.event_id, NOW, Decimal(rng.randrange(0, 10**6)) / 10**7))
    return rows


async def test_every_rollup_equals_the_events_grouped(store: UsageStore, pool: asyncpg.Pool) -> None:
    rng = random.Random(11)
    first, second = _rows(rng, 0, 300), _rows(rng, 300, 200)
    await store.insert_batch(first)
    await store.insert_batch(second + first[:50] + second[:10])  # repeats, stored already or within the batch
    sums = ", ".join(f"sum({c})" for c in SUMS)
    for rollup in ROLLUPS:
        dims = ", ".join(rollup.dims)
        got = await pool.fetch(
            f"SELECT bucket, {dims}, requests, errors, {', '.join(SUMS)} FROM {rollup.table} ORDER BY bucket, {dims}"
        )
        expected = await pool.fetch(
            f"SELECT date_trunc('{rollup.unit}', ts, 'UTC') AS bucket, {dims}, count(*) AS requests, "
            f"count(*) FILTER (WHERE status >= 400 OR error_type <> '') AS errors, {sums} "
            f"FROM usage_events GROUP BY 1, {dims} ORDER BY 1, {dims}"
        )
        assert [tuple(r) for r in got] == [tuple(r) for r in expected], rollup.table
        assert len(got) > 1
    got = await pool.fetch("SELECT bucket, provider, class, n FROM usage_latency_hour ORDER BY 1, 2, 3")
    expected = await pool.fetch(
        f"SELECT date_trunc('hour', ts, 'UTC'), provider, {latency_class_sql('latency_ms')}, count(*) "
        "FROM usage_events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    assert [tuple(r) for r in got] == [tuple(r) for r in expected]
    assert await pool.fetchval("SELECT count(*) FROM usage_events") == 500
