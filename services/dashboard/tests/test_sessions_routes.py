"""``GET /api/sessions`` over the Redis layout the edges write (omniroute_core.sessionkeys)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from omniroute_core.sessionkeys import ANONYMOUS, SESSION_BY_KEY, SESSION_INDEX, SESSION_PREFIX, SESSION_TTL_MS
from omniroute_dashboard.settings import DashboardSettings

from .conftest import Dashboard, make_settings, start
from .test_auth import assert_error


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    stale = [k async for k in client.scan_iter(match="omr:sess:*")]  # the session's Redis is shared by tests
    if stale:
        await client.delete(*stale)
    yield client
    await client.aclose()


@pytest.fixture
async def dash(pg_database: str, nats_url: str, redis_url: str) -> AsyncIterator[Dashboard]:
    settings: DashboardSettings = make_settings(pg_database, nats_url, redis_url=redis_url)
    async for running in start(settings):
        yield running


async def record(redis: aioredis.Redis, key_id: str, last_ms: int, count: int, created_ms: int) -> str:
    """What an edge writes for one session."""
    sid = uuid.uuid4().hex[:16]
    await redis.hset(
        SESSION_PREFIX + sid,
        mapping={"keyId": key_id, "model": "openai/m", "createdAt": created_ms, "lastActive": last_ms,
                 "requestCount": count},
    )  # fmt: skip
    await redis.zadd(SESSION_INDEX, {sid: last_ms})
    await redis.zadd(SESSION_BY_KEY + (key_id or ANONYMOUS), {sid: last_ms})
    return sid


async def test_active_sessions_by_key_most_recent_first(dash: Dashboard, redis: aioredis.Redis) -> None:
    created = await dash.admin.post("/api/keys", json={"name": "s", "scopes": ["chat"]})
    key_id = str(created.json()["id"])
    now = int(time.time() * 1000)
    older = await record(redis, key_id, now - 5000, 2, now - 9000)
    newer = await record(redis, key_id, now - 1000, 7, now - 3000)
    anonymous = await record(redis, "", now - 2000, 1, now - 2000)
    expired = await record(redis, key_id, now - SESSION_TTL_MS - 1000, 4, now - SESSION_TTL_MS - 9000)

    resp = await dash.admin.get("/api/sessions")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["count"] == 3
    assert [s["sessionId"] for s in doc["sessions"]] == [newer, anonymous, older]
    assert expired not in {s["sessionId"] for s in doc["sessions"]}
    first = doc["sessions"][0]
    assert first == {
        "sessionId": newer,
        "apiKeyId": key_id,
        "model": "openai/m",
        "createdAt": now - 3000,
        "lastActive": now - 1000,
        "requestCount": 7,
        "ageMs": first["ageMs"],
    }
    assert first["ageMs"] >= 3000
    assert doc["sessions"][1]["apiKeyId"] is None
    assert doc["byApiKey"] == {key_id: 2, ANONYMOUS: 1}
    assert await redis.zscore(SESSION_INDEX, expired) is None  # pruned on read

    narrowed = (await dash.admin.get("/api/sessions", params={"keyId": key_id, "limit": 1})).json()
    assert narrowed["count"] == 2
    assert [s["sessionId"] for s in narrowed["sessions"]] == [newer]
    assert narrowed["byApiKey"] == {key_id: 2, ANONYMOUS: 1}


async def test_no_sessions_is_an_empty_answer(dash: Dashboard, redis: aioredis.Redis) -> None:
    resp = await dash.admin.get("/api/sessions")
    assert resp.status_code == 200
    assert resp.json() == {"count": 0, "sessions": [], "byApiKey": {}}


async def test_requires_login_and_valid_parameters(dash: Dashboard, redis: aioredis.Redis) -> None:
    assert_error(await dash.client.get("/api/sessions"), 401, "authentication_error")
    for params in ({"limit": 0}, {"limit": 5000}, {"limit": "many"}, {"keyId": ""}):
        assert_error(await dash.admin.get("/api/sessions", params=params), 400, "invalid_request_error")
