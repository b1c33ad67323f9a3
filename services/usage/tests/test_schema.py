"""Migrations: the usage_events table and its indexes; safe to run twice, and from two replicas at once."""

from __future__ import annotations

import asyncio

import asyncpg

from omniroute_usage.schema import COMPONENT, MIGRATIONS, migrate_usage


async def _migrate_once(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate_usage(conn)
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_step_once(pg_database: str) -> None:
    versions = await asyncio.gather(*(_migrate_once(pg_database) for _ in range(4)))
    assert versions == [len(MIGRATIONS)] * 4
    assert await _migrate_once(pg_database) == len(MIGRATIONS)

    conn = await asyncpg.connect(pg_database)
    try:
        applied = await conn.fetch(
            "SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version", COMPONENT
        )
        assert [r["version"] for r in applied] == list(range(1, len(MIGRATIONS) + 1))
        indexes = {
            r["indexdef"].split(" USING btree ")[1]
            for r in await conn.fetch("SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_events'")
        }
        assert indexes == {
            "(event_id)",
            "(key_id, ts)",
            "(ts)",
            "(connection_id, ts)",
            "(request_id) WHERE (request_id <> ''::text)",
            "(ts) WHERE ((attempt > 1) AND (request_id <> ''::text))",
        }
    finally:
        await conn.close()


async def test_table_has_every_event_column(db: str) -> None:
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'usage_events'"
        )
    finally:
        await conn.close()
    types = {r["column_name"]: r["data_type"] for r in rows}
    assert types["event_id"] == "text"
    assert types["ts"] == "timestamp with time zone"
    assert types["status"] == types["attempt"] == "integer"
    assert types["stream"] == "boolean"
    assert types["client_format"] == "text"
    for col in (
        "latency_ms",
        "ttft_ms",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cache_creation_tokens",
        "reasoning_tokens",
        "total_tokens",
    ):
        assert types[col] == "bigint", col
    assert types["cost_usd"] == "numeric"
    assert len(types) == 24
