"""Idempotency and the exact cache, across two edge processes that share Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from omniroute_devservers.control import config_synced, make_key, make_provider, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

WINDOW_MS = 1500


@pytest.fixture(scope="module")
async def edges(suite: Suite) -> AsyncIterator[tuple[str, str]]:
    """Two extra edges with a short idempotency window, sharing the suite's Redis and executor."""
    env = {"IDEMPOTENCY_WINDOW_MS": str(WINDOW_MS)}
    a = suite.start_service("edge", key="edge-a", overrides=env)
    b = suite.start_service("edge", key="edge-b", overrides=env)
    yield f"http://127.0.0.1:{a}", f"http://127.0.0.1:{b}"
    suite.stop_service("edge-a")
    suite.stop_service("edge-b")


@pytest.fixture(scope="module")
async def upstream(admin: httpx.AsyncClient) -> AsyncIterator[FakeOpenAI]:
    """A dedicated provider ('mistral', OpenAI format) so these tests count only their own upstream calls."""
    fake = FakeOpenAI()
    await fake.start()
    await make_provider(admin, "mistral", fake.base_url)
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
async def keys(admin: httpx.AsyncClient, edges: tuple[str, str]) -> tuple[str, str]:
    pair = (await make_key(admin))[1], (await make_key(admin))[1]
    await config_synced(admin, list(edges))  # keys scope idempotency and the cache: both edges must know them
    return pair


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "mistral/mistral-small-latest", "messages": [{"role": "user", "content": "hi"}], **extra}


async def post(base: str, body: dict[str, Any], key: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=15) as http:
        return await http.post(
            base + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}", **headers}
        )


async def ready(edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]) -> None:
    async def probe() -> None:
        for base in edges:
            resp = await post(base, chat(), keys[0])
            assert resp.status_code == 200, resp.text

    await until_ok(probe, timeout=5)


async def test_concurrent_duplicates_on_two_edges_reach_the_provider_once(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    await ready(edges, upstream, keys)
    before = len(upstream.requests)
    upstream.script.append(Reply(json=upstream.completion("slow"), delay_s=0.5))
    token = uuid.uuid4().hex
    first, second = await asyncio.gather(
        post(edges[0], chat(), keys[0], **{"Idempotency-Key": token}),
        post(edges[1], chat(), keys[0], **{"Idempotency-Key": token}),
    )
    assert len(upstream.requests) == before + 1
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    flags = sorted(r.headers.get("x-omniroute-idempotent", "") for r in (first, second))
    assert flags == ["", "true"]


async def test_a_repeat_after_the_window_runs_again(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    await ready(edges, upstream, keys)
    token = uuid.uuid4().hex
    await post(edges[0], chat(), keys[0], **{"X-Request-Id": token})
    before = len(upstream.requests)
    repeat = await post(edges[1], chat(), keys[0], **{"X-Request-Id": token})
    assert repeat.headers["x-omniroute-idempotent"] == "true"
    assert len(upstream.requests) == before
    await asyncio.sleep(WINDOW_MS / 1000 + 0.3)
    later = await post(edges[1], chat(), keys[0], **{"X-Request-Id": token})
    assert "x-omniroute-idempotent" not in later.headers
    assert len(upstream.requests) == before + 1


async def test_idempotency_is_scoped_by_key(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    await ready(edges, upstream, keys)
    token = uuid.uuid4().hex
    await post(edges[0], chat(), keys[0], **{"Idempotency-Key": token})
    other = await post(edges[0], chat(), keys[1], **{"Idempotency-Key": token})
    assert "x-omniroute-idempotent" not in other.headers


async def test_deterministic_requests_are_cached_across_edges(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    await ready(edges, upstream, keys)
    body = chat(temperature=0, seed=uuid.uuid4().int % 1000)
    miss = await post(edges[0], body, keys[0])
    assert miss.headers["x-omniroute-cache"] == "MISS"
    before = len(upstream.requests)
    hit = await post(edges[1], body, keys[0])
    assert hit.headers["x-omniroute-cache"] == "HIT"
    assert hit.content == miss.content
    assert len(upstream.requests) == before
    bypass = await post(edges[1], body, keys[0], **{"X-OmniRoute-No-Cache": "true"})
    assert "x-omniroute-cache" not in bypass.headers
    assert len(upstream.requests) == before + 1


async def test_sampled_requests_are_not_cached(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    await ready(edges, upstream, keys)
    resp = await post(edges[0], chat(temperature=0.7), keys[0])
    assert "x-omniroute-cache" not in resp.headers


@pytest.mark.parametrize(
    "variant",
    [
        {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"model": "mistral/mistral-large-latest"},
        {"max_tokens": 5},
    ],
)
async def test_no_false_hit_when_anything_differs(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str], variant: dict[str, Any]
) -> None:
    await ready(edges, upstream, keys)
    base = chat(temperature=0, seed=uuid.uuid4().int % 100_000)
    await post(edges[0], base, keys[0])
    assert (await post(edges[0], base, keys[0])).headers["x-omniroute-cache"] == "HIT"
    assert (await post(edges[0], {**base, **variant}, keys[0])).headers["x-omniroute-cache"] == "MISS"
    assert (await post(edges[0], base, keys[1])).headers["x-omniroute-cache"] == "MISS"


async def test_a_cached_stream_is_replayed_as_a_stream(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    await ready(edges, upstream, keys)
    body = chat(temperature=0, stream=True, seed=uuid.uuid4().int % 100_000)
    first = await post(edges[0], body, keys[0])
    before = len(upstream.requests)
    second = await post(edges[1], body, keys[0])
    assert len(upstream.requests) == before
    assert second.headers["content-type"].startswith("text/event-stream")
    assert second.content == first.content
    assert second.content.endswith(b"data: [DONE]\n\n")


async def test_cache_stats_have_the_reference_shape_and_delete_clears_every_tier(
    admin: httpx.AsyncClient, edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    await ready(edges, upstream, keys)
    body = chat(temperature=0, seed=uuid.uuid4().int % 100_000)
    await post(edges[0], body, keys[0])
    assert (await post(edges[0], body, keys[0])).headers["x-omniroute-cache"] == "HIT"
    await asyncio.sleep(1.2)  # edges report their in-process tier every second
    stats = (await admin.get("/api/cache")).json()
    assert set(stats) == {"semanticCache", "idempotency"}
    assert set(stats["semanticCache"]) == {"memorySize", "memoryMaxSize", "dbSize", "hitRate"}
    assert stats["semanticCache"]["dbSize"] >= 1
    assert stats["semanticCache"]["memorySize"] >= 1
    assert stats["semanticCache"]["memoryMaxSize"] >= 500
    assert 0 < stats["semanticCache"]["hitRate"] <= 1
    assert stats["idempotency"]["windowMs"] == 5000
    assert isinstance(stats["idempotency"]["activeKeys"], int)

    assert (await admin.delete("/api/cache")).status_code == 200
    await asyncio.sleep(0.2)  # the clear reaches every edge over Redis pub/sub
    assert (await post(edges[1], body, keys[0])).headers["x-omniroute-cache"] == "MISS"
    assert (await admin.get("/api/cache")).json()["semanticCache"]["dbSize"] == 1


async def test_cache_endpoints_need_admin(suite: Suite) -> None:
    async with httpx.AsyncClient(base_url=suite.edge_url) as anonymous:
        assert (await anonymous.get("/api/cache")).status_code == 401
        assert (await anonymous.delete("/api/cache")).status_code == 401


async def test_cache_eligibility_follows_the_key_then_the_gateway_setting(
    admin: httpx.AsyncClient, edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    await ready(edges, upstream, keys)
    always = (await make_key(admin, cachePolicy="always"))[1]
    never = (await make_key(admin, cachePolicy="never"))[1]
    await config_synced(admin, list(edges))
    sampled = chat(temperature=0.7, seed=uuid.uuid4().int % 100_000)
    assert (await post(edges[0], sampled, always)).headers["x-omniroute-cache"] == "MISS"
    assert (await post(edges[1], sampled, always)).headers["x-omniroute-cache"] == "HIT"
    pinned = chat(temperature=0, seed=uuid.uuid4().int % 100_000)
    before = len(upstream.requests)
    for base in edges:
        assert "x-omniroute-cache" not in (await post(base, pinned, never)).headers
    assert len(upstream.requests) == before + 2

    assert (await admin.put("/api/settings/cache", json={"policy": "always"})).status_code == 200
    try:
        await config_synced(admin, list(edges))
        other = chat(temperature=1, seed=uuid.uuid4().int % 100_000)
        assert (await post(edges[0], other, keys[0])).headers["x-omniroute-cache"] == "MISS"
        assert (await post(edges[1], other, keys[0])).headers["x-omniroute-cache"] == "HIT"
        assert "x-omniroute-cache" not in (await post(edges[0], other, never)).headers  # the key's own wins
    finally:
        assert (await admin.put("/api/settings/cache", json={"policy": "deterministic"})).status_code == 200
        await config_synced(admin, list(edges))
    assert "x-omniroute-cache" not in (await post(edges[0], chat(temperature=1), keys[0])).headers
