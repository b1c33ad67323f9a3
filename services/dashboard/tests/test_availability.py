"""``/api/models/catalog``, ``/api/models/availability`` and ``/api/rate-limits`` against records written into a
real Redis in the layout the executor uses (:mod:`omniroute_core.health`, :mod:`omniroute_core.ratelimits`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from omniroute_core import jsonx
from omniroute_core.health import Health, connection_key, health_hash, lockout_key, provider_key
from omniroute_core.ratelimits import parse_rate_limits, rate_limit_key
from omniroute_core.snapshot import ProviderConnection
from omniroute_dashboard.settings import DashboardSettings
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard, make_settings, start
from .test_auth import assert_error


@pytest.fixture
async def rdash(pg_database: str, nats_url: str, redis_url: str) -> AsyncIterator[Dashboard]:
    settings: DashboardSettings = make_settings(pg_database, nats_url, redis_url=redis_url)
    async for running in start(settings):
        # every test gets its own reset epoch, so records of other tests (same Redis) are not seen
        await running.ctx.pool.execute(
            "INSERT INTO settings (key, value) VALUES ('resilience', $1)", {"resetEpoch": time.time_ns()}
        )
        yield running


async def connection(dash: Dashboard, provider: str, name: str, **fields: Any) -> str:
    body = {"provider": provider, "name": name, "apiKey": f"sk-{name}-0123456789", **fields}
    response = await dash.admin.post("/api/providers", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def write(dash: Dashboard, records: dict[str, Health]) -> None:
    snap = await load_snapshot(dash.ctx.pool)
    epoch = str(snap.settings["resilience"]["resetEpoch"])
    await dash.ctx.redis.hset(health_hash(epoch), mapping={k: jsonx.dumps(v.encode()) for k, v in records.items()})


async def conn_of(dash: Dashboard, cid: str) -> ProviderConnection:
    snap = await load_snapshot(dash.ctx.pool)
    return next(c for c in snap.connections if c.id == cid)


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_catalog_lists_models_by_provider_and_type(rdash: Dashboard) -> None:
    await connection(rdash, "openai", "main")
    node = await rdash.admin.post(
        "/api/provider-nodes", json={"name": "n", "prefix": "vllm", "baseUrl": "http://10.1.1.1/v1", "apiKey": ""}
    )
    node_id = node.json()["node"]["id"]
    for body in (
        {"provider": "vllm", "modelId": "qwen3-8b", "reasoning": True},
        {"provider": "vllm", "modelId": "bge-m3", "type": "embedding"},
        {"provider": "openai", "modelId": "gpt-image-1", "type": "image", "prices": {"input": 5, "output": 40}},
    ):
        assert (await rdash.admin.post("/api/provider-models", json=body)).status_code == 201
    await rdash.admin.post("/api/models/alias", json={"alias": "fast", "model": "openai/gpt-4o-mini"})

    body = (await rdash.admin.get("/api/models/catalog")).json()
    catalog = body["catalog"]
    openai = catalog["openai"]
    assert openai["active"] is True and openai["connections"] == 1 and openai["prefixes"] == ["openai", "oai"]
    assert openai["kind"] == "catalog" and openai["format"] == "openai"
    by_id = {m["id"]: m for m in openai["models"]}
    assert by_id["openai/gpt-4o"] == {
        "id": "openai/gpt-4o",
        "model": "gpt-4o",
        "name": "gpt-4o",
        "type": "chat",
        "custom": False,
        "reasoning": False,
        "prices": {"input": 2.5, "output": 10.0, "cachedInput": 1.25},  # the shipped price book
    }
    assert by_id["openai/gpt-image-1"]["custom"] is True and by_id["openai/gpt-image-1"]["type"] == "image"
    assert catalog["anthropic"]["active"] is False
    vllm = catalog[node_id]
    assert (vllm["kind"], vllm["prefixes"], vllm["active"]) == ("node", ["vllm"], True)
    assert [(m["id"], m["type"], m["reasoning"]) for m in vllm["models"]] == [
        ("vllm/bge-m3", "embedding", False),
        ("vllm/qwen3-8b", "chat", True),
    ]
    assert by_id["openai/text-embedding-3-small"]["type"] == "embedding"  # the catalog's operationModels
    assert by_id["openai/whisper-1"]["type"] == "audio"
    assert {"vllm/bge-m3", "openai/text-embedding-3-small"} <= set(body["types"]["embedding"])
    assert body["types"]["image"].count("openai/gpt-image-1") == 1  # the custom entry replaces the catalog's
    assert "anthropic/claude-sonnet-4-5" in body["types"]["chat"]
    assert body["aliases"] == {"fast": "openai/gpt-4o-mini"}
    assert catalog["local"]["active"] is True  # built in: no connection needed

    embeddings = (await rdash.admin.get("/api/models/catalog?type=embedding&active=true")).json()
    assert list(embeddings["catalog"]) == ["openai", "local", node_id]
    assert all(m["type"] == "embedding" for e in embeddings["catalog"].values() for m in e["models"])
    assert_error(await rdash.admin.get("/api/models/catalog?type=video"), 400, "invalid_request_error")
    assert_error(await rdash.client.get("/api/models/catalog"), 401, "authentication_error")


async def test_availability_reports_breakers_cooldowns_and_lockouts(rdash: Dashboard) -> None:
    a = await connection(rdash, "openai", "a", priority=1)
    b = await connection(rdash, "openai", "b", priority=2)
    c = await connection(rdash, "openai", "c", priority=3, isActive=False)
    await connection(rdash, "groq", "g")
    now = now_ms()
    conn_a = await conn_of(rdash, a)
    await write(
        rdash,
        {
            connection_key(a): Health(cooldown_until_ms=now + 60_000, backoff_level=2),
            connection_key(b): Health(failures=1),
            lockout_key(await conn_of(rdash, b), "o3"): Health(locked_until_ms=now + 60_000, lock_status=404),
            lockout_key(conn_a, "gpt-4o"): Health(locked_until_ms=now - 1, lock_status=401),  # expired
            provider_key("groq"): Health(failures=10, open_until_ms=now + 30_000),
        },
    )
    body = (await rdash.admin.get("/api/models/availability")).json()
    providers = {p["provider"]: p for p in body["providers"]}
    assert set(providers) == {"openai", "groq"}  # configured providers only
    openai = providers["openai"]
    states = {conn["id"]: conn for conn in openai["connections"]}
    assert states[a]["state"] == "cooling_down" and states[a]["cooldown"]["consecutive429"] == 2
    assert states[b]["state"] == "available" and states[b]["breaker"] == {
        "state": "closed",
        "failures": 1,
        "openUntil": None,
    }
    assert states[b]["lockouts"] == [{"model": "o3", "status": 404, "until": states[b]["lockouts"][0]["until"]}]
    assert states[a]["lockouts"] == []  # expired
    assert states[c]["state"] == "disabled"
    models = {m["model"]: m for m in openai["models"]}
    assert models["gpt-4o"] == {
        "id": "openai/gpt-4o",
        "model": "gpt-4o",
        "state": "available",
        "availableConnections": 1,
        "reason": None,
    }
    assert models["o3"]["state"] == "unavailable" and "HTTP 404" in models["o3"]["reason"]
    groq = providers["groq"]
    assert groq["state"] == "breaker_open" and groq["breaker"]["state"] == "open"
    assert groq["connections"][0]["state"] == "provider_breaker_open"
    assert body["summary"]["lockedOutModels"] == 1 and body["summary"]["cooling_down"] == 1

    everything = (await rdash.admin.get("/api/models/availability?all=true")).json()
    anthropic = next(p for p in everything["providers"] if p["provider"] == "anthropic")
    assert anthropic["state"] == "not_configured"


async def test_availability_of_one_model_string(rdash: Dashboard) -> None:
    a = await connection(rdash, "openai", "a", priority=1)
    b = await connection(rdash, "openai", "b", priority=2)
    await connection(rdash, "groq", "g")
    combo = {"name": "team", "strategy": "priority", "models": ["openai/gpt-4o", "mistral/large", "groq/llama"]}
    assert (await rdash.admin.post("/api/combos", json=combo)).status_code == 201
    assert (await rdash.admin.post("/api/models/alias", json={"alias": "best", "model": "team"})).status_code == 201
    now = now_ms()
    await write(rdash, {connection_key(a): Health(failures=3, open_until_ms=now + 20_000)})

    body = (await rdash.admin.post("/api/models/availability", json={"model": "best"})).json()
    assert body["available"] is True and body["retryAfterMs"] is None
    assert body["resolution"] == {
        "aliases": ["best"],
        "combo": "team",
        "strategy": "priority",
        "provider": None,
        "upstreamModel": None,
    }
    assert [(t["connectionId"], t["model"], t["state"]) for t in body["targets"]] == [
        (b, "gpt-4o", "available"),
        (body["targets"][1]["connectionId"], "llama", "available"),
    ]
    skipped = {s.get("connectionId") or s["step"]: s for s in body["skipped"]}
    assert skipped[a]["state"] == "breaker_open" and "circuit breaker" in skipped[a]["reason"]
    assert skipped["mistral/large"]["state"] == "unroutable"
    assert "no active connection for provider 'mistral'" in skipped["mistral/large"]["reason"]

    await write(rdash, {connection_key(b): Health(cooldown_until_ms=now + 9_000, backoff_level=1)})
    direct = (await rdash.admin.post("/api/models/availability", json={"model": "openai/gpt-4o"})).json()
    assert direct["available"] is False and direct["targets"] == []
    assert 0 < direct["retryAfterMs"] <= 9_000
    assert direct["resolution"]["provider"] == "openai" and direct["resolution"]["upstreamModel"] == "gpt-4o"


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("nope/x", 404, "model_not_found"),
        ("anthropic/claude-sonnet-4-5", 400, "provider_not_configured"),
        ("no-such-model", 404, "model_not_found"),
    ],
)
async def test_availability_of_unresolvable_models(rdash: Dashboard, model: str, status: int, code: str) -> None:
    response = await rdash.admin.post("/api/models/availability", json={"model": model})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_availability_validation_and_auth(rdash: Dashboard) -> None:
    assert_error(await rdash.admin.post("/api/models/availability", json={}), 400, "invalid_request_error")
    assert_error(await rdash.admin.post("/api/models/availability", json={"model": ""}), 400, "invalid_request_error")
    assert_error(await rdash.client.get("/api/models/availability"), 401, "authentication_error")
    assert_error(await rdash.client.post("/api/models/availability", json={"model": "x"}), 401, "authentication_error")
    assert_error(await rdash.client.get("/api/rate-limits"), 401, "authentication_error")


async def test_rate_limits_per_connection(rdash: Dashboard) -> None:
    a = await connection(rdash, "openai", "a")
    b = await connection(rdash, "anthropic", "b")
    c = await connection(rdash, "openai", "c")
    now = now_ms()
    openai_headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-tokens": "20ms",
    }
    record_a = parse_rate_limits(openai_headers.items(), 200, now)
    anthropic_headers = {"anthropic-ratelimit-input-tokens-remaining": "100", "retry-after": "30"}
    record_b = parse_rate_limits(anthropic_headers.items(), 429, now)
    assert record_a is not None and record_b is not None
    await rdash.ctx.redis.set(rate_limit_key(a), jsonx.dumps(record_a))
    await rdash.ctx.redis.set(rate_limit_key(b), jsonx.dumps(record_b))
    await write(rdash, {connection_key(b): Health(cooldown_until_ms=now + 30_000, backoff_level=1)})

    body = (await rdash.admin.get("/api/rate-limits")).json()
    entries = {e["connectionId"]: e for e in body["connections"]}
    assert body["total"] == 3
    assert entries[a]["state"] == "exhausted"
    assert entries[a]["requests"]["limit"] == 500 and entries[a]["requests"]["remaining"] == 0
    assert entries[a]["tokens"]["remaining"] == 29000 and entries[a]["lastStatus"] == 200
    assert entries[b]["state"] == "cooling_down" and entries[b]["retryAfterMs"] == 30_000
    assert entries[b]["inputTokens"]["remaining"] == 100 and entries[b]["requests"] is None
    assert entries[c]["state"] == "unknown" and entries[c]["observedAt"] is None
    only = (await rdash.admin.get("/api/rate-limits?provider=claude")).json()
    assert [e["connectionId"] for e in only["connections"]] == [b]


async def test_redis_down_is_503(pg_database: str, nats_url: str) -> None:
    from omniroute_devservers.servers import free_port

    settings = make_settings(pg_database, nats_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async for dash in start(settings):
        assert_error(await dash.admin.get("/api/models/availability"), 503, "service_unavailable")
        assert_error(await dash.admin.get("/api/rate-limits"), 503, "service_unavailable")


async def test_redis_records_are_read_as_written(rdash: Dashboard) -> None:
    """The executor writes bytes; the dashboard's client returns bytes: both decode through the core helpers."""
    redis: Redis = rdash.ctx.redis
    await write(rdash, {"conn:x": Health(1, 2, 3, 4)})
    snap = await load_snapshot(rdash.ctx.pool)
    raw = await redis.hget(health_hash(str(snap.settings["resilience"]["resetEpoch"])), "conn:x")
    assert raw is not None and jsonx.loads(raw) == [1, 2, 3, 4]
