"""Migrations: idempotent, and safe when several replicas start at the same moment."""

from __future__ import annotations

import asyncio

import asyncpg

from omniroute_dashboard.schema import COMPONENT, STEPS, ensure_schema

TABLES = {"provider_connections", "api_keys", "admin_credentials", "dashboard_sessions", "settings", "config_version"}


async def test_concurrent_and_repeated_migrations(pg_database: str) -> None:
    results = await asyncio.gather(*(ensure_schema(pg_database) for _ in range(4)))
    assert results == [len(STEPS)] * 4
    assert await ensure_schema(pg_database) == len(STEPS)

    conn = await asyncpg.connect(pg_database)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations WHERE component = $1", COMPONENT)
        assert sorted(r["version"] for r in versions) == list(range(1, len(STEPS) + 1))
        tables = {
            r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert tables >= TABLES
        assert [tuple(r) for r in await conn.fetch("SELECT id, version FROM config_version")] == [(1, 0)]
    finally:
        await conn.close()
