"""The store: idempotent batch inserts, row mapping, and the key-usage totals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
import pytest

from omniroute.v1 import common_pb2, usage_pb2
from omniroute_usage.store import COLUMNS, KeyUsage, UsageStore, event_row, open_pool
from omniroute_usage.testing import make_event

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _row(event: usage_pb2.UsageEvent) -> tuple[object, ...]:
    return event_row(event, event.event_id, NOW)


def test_event_row_maps_every_field() -> None:
    row = dict(zip(COLUMNS, _row(make_event("openai", 3)), strict=True))
    assert row == {
        "event_id": "ev-openai-3",
        "request_id": "req-openai-3",
        "ts": dt.datetime(2025, 10, 9, 8, 53, 20, 3000, tzinfo=dt.UTC),
        "key_id": "key-a",
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "requested_model": "openai/gpt-4o",
        "connection_id": "conn-1",
        "combo": "fast",
        "status": 200,
        "latency_ms": 1234,
        "ttft_ms": 210,
        "input_tokens": 103,
        "output_tokens": 50,
        "cached_input_tokens": 20,
        "cache_creation_tokens": 5,
        "reasoning_tokens": 7,
        "total_tokens": 153,
        "client_format": "anthropic",
        "stream": True,
        "attempt": 2,
        "error_type": "",
        "endpoint": "/v1/messages",
        "cost_usd": Decimal(0),
    }


def test_event_row_repairs_what_postgres_would_reject() -> None:
    for bad_ts in (0, -5, 10**17, 2**63 - 1):
        event = make_event("p", ts_unix_ms=bad_ts, model="a\x00b")
        row = dict(zip(COLUMNS, _row(event), strict=True))
        assert row["ts"] == NOW
        assert row["model"] == "ab"


def test_event_row_names_formats() -> None:
    names = {
        fmt: dict(zip(COLUMNS, _row(make_event("p", client_format=fmt)), strict=True))["client_format"]
        for fmt in (common_pb2.FORMAT_UNSPECIFIED, common_pb2.FORMAT_OPENAI_CHAT, common_pb2.FORMAT_GEMINI)
    }
    assert names == {
        common_pb2.FORMAT_UNSPECIFIED: "unspecified",
        common_pb2.FORMAT_OPENAI_CHAT: "openai",
        common_pb2.FORMAT_GEMINI: "gemini",
    }


async def test_insert_is_idempotent_by_event_id(store: UsageStore, db: str) -> None:
    a, b, c = (_row(make_event("p", n)) for n in range(3))
    assert await store.insert_events([]) == 0
    assert await store.insert_events([a, b, a]) == 2  # a repeat inside one batch is skipped too
    assert await store.insert_events([a, b, c]) == 1
    conn = await asyncpg.connect(db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM usage_events") == 3
    finally:
        await conn.close()


async def test_inserted_row_reads_back_unchanged(store: UsageStore, db: str) -> None:
    row = _row(make_event("p", 9))
    await store.insert_events([row])
    conn = await asyncpg.connect(db)
    try:
        stored = await conn.fetchrow(f"SELECT {', '.join(COLUMNS)} FROM usage_events")
    finally:
        await conn.close()
    assert stored is not None
    assert tuple(stored) == row


async def test_key_usage_sums_the_window(store: UsageStore) -> None:
    def ev(n: int, key: str, ts_ms: int, request_id: str) -> tuple[object, ...]:
        return _row(make_event("p", n, key_id=key, ts_unix_ms=ts_ms, request_id=request_id))

    t0 = 1_760_000_000_000
    await store.insert_events(
        [
            ev(0, "k1", t0 - 1, "r0"),  # before the window
            ev(1, "k1", t0, "r1"),
            ev(2, "k1", t0 + 10, "r2"),  # two attempts of one request: one request, both attempts' tokens
            ev(3, "k1", t0 + 20, "r2"),
            ev(4, "k1", t0 + 30, ""),  # no request id: counts on its own
            ev(5, "k2", t0 + 40, "r5"),  # another key
        ]
    )
    since = dt.datetime.fromtimestamp(t0 / 1000, dt.UTC)
    totals = await store.key_usage("k1", since)
    assert totals == KeyUsage(
        requests=3,
        input_tokens=101 + 102 + 103 + 104,
        output_tokens=4 * 50,
        cached_input_tokens=4 * 20,
        cache_creation_tokens=4 * 5,
        reasoning_tokens=4 * 7,
        total_tokens=151 + 152 + 153 + 154,
    )
    assert await store.key_usage("nobody", since) == KeyUsage(0, 0, 0, 0, 0, 0, 0)


async def test_a_failed_batch_leaves_the_pooled_connection_clean(db: str) -> None:
    # connections return to the pool without asyncpg's reset queries: a batch PostgreSQL rejected must still leave
    # nothing behind on the connection (no open transaction, no staged rows) for the next batch
    conn = await asyncpg.connect(db)
    try:
        await conn.execute("ALTER TABLE usage_events ADD CONSTRAINT test_reject CHECK (model <> 'reject-me')")
    finally:
        await conn.close()
    pool = await open_pool(db, max_size=1)
    try:
        store = UsageStore(pool)
        good, bad = _row(make_event("p", 1)), _row(make_event("p", 2, model="reject-me"))
        with pytest.raises(asyncpg.CheckViolationError):
            await store.insert_batch([good, bad])
        assert await store.insert_batch([_row(make_event("p", 3))]) == {"ev-p-3": False}
        async with pool.acquire() as same:
            assert not same.is_in_transaction()
            assert await same.fetchval("SELECT count(*) FROM usage_events_in") == 0
            assert await same.fetchval("SELECT count(*) FROM usage_events") == 1
    finally:
        await pool.close()
