"""Fixtures for the usage tests: a migrated database, a JetStream context, an isolated lane per test.

Every test publishes on its own ``omniroute.usage.<provider>`` subject and consumes it with its own durable, so
tests sharing the session's NATS server never see each other's messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from omniroute_core import events
from omniroute_usage.schema import migrate_usage
from omniroute_usage.store import UsageStore, open_pool
from omniroute_usage.testing import Lane, new_lane


@pytest.fixture
async def db(pg_database: str) -> str:
    """DSN of a fresh database with the usage schema applied."""
    conn = await asyncpg.connect(pg_database)
    try:
        await migrate_usage(conn)
    finally:
        await conn.close()
    return pg_database


@pytest.fixture
async def pool(db: str) -> AsyncIterator[asyncpg.Pool]:
    p = await open_pool(db)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def store(pool: asyncpg.Pool) -> UsageStore:
    return UsageStore(pool)


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await events.connect(nats_url, "usage-tests")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def js(nc: NATS) -> JetStreamContext:
    ctx = nc.jetstream()
    await events.ensure_usage_stream(ctx)
    return ctx


@pytest.fixture
async def lane(js: JetStreamContext) -> AsyncIterator[Lane]:
    lane = new_lane()
    yield lane
    # a test that never subscribed has no consumer to delete
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(events.USAGE_STREAM, lane.durable)
