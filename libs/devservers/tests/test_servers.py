"""The launcher starts real servers: each answers its own protocol."""

from __future__ import annotations

import asyncpg
import nats
import redis.asyncio as aioredis


async def test_postgres_answers_sql(pg_database: str) -> None:
    conn = await asyncpg.connect(pg_database)
    try:
        assert await conn.fetchval("SELECT 40 + 2") == 42
        assert (await conn.fetchval("SHOW server_version")).startswith(("1", "2"))
    finally:
        await conn.close()


async def test_redis_round_trips(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        await client.set("devservers:probe", "v")
        assert await client.get("devservers:probe") == b"v"
    finally:
        await client.aclose()


async def test_nats_has_jetstream(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().account_info()
        assert info.limits is not None
    finally:
        await nc.close()
