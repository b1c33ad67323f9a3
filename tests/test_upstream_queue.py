"""A provider's concurrency queue across every service: with one request in flight and no queue allowed
(``/api/settings/routing`` ``providers.<id>.maxConcurrent = 1, maxQueued = 0``), a second concurrent request is
refused at once with 503 and ``Retry-After`` in the client's own format (OpenAI and Anthropic), without reaching
the provider; through a combo, it is served by the next provider instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from omniroute_devservers.control import config_synced, make_key, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

USER = [{"role": "user", "content": "hi"}]


@dataclass
class Env:
    key: str
    busy: FakeOpenAI
    spare: FakeOpenAI
    edge: str


async def _node(admin: httpx.AsyncClient, prefix: str, base_url: str) -> str:
    body = {"name": prefix, "prefix": prefix, "baseUrl": base_url, "apiKey": "sk-node"}
    resp = await admin.post("/api/provider-nodes", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["node"]["id"])


@pytest.fixture(scope="module")
async def env(admin: httpx.AsyncClient, suite: Suite) -> AsyncIterator[Env]:
    busy, spare = FakeOpenAI(), FakeOpenAI()
    await busy.start()
    await spare.start()
    busy_id = await _node(admin, "qbusy", busy.base_url)
    await _node(admin, "qspare", spare.base_url)
    limits = {"maxConcurrent": 1, "maxQueued": 0}
    resp = await admin.put("/api/settings/routing", json={"providers": {busy_id: limits}})
    assert resp.status_code == 200, resp.text
    combo = {"name": "qcombo", "strategy": "priority", "models": ["qbusy/m1", "qspare/m2"]}
    assert (await admin.post("/api/combos", json=combo)).status_code in (200, 201)
    _, key = await make_key(admin)
    await config_synced(admin, [suite.edge_url])
    try:
        yield Env(key, busy, spare, suite.edge_url)
    finally:
        await admin.put("/api/settings/routing", json={"providers": {busy_id: None}})
        await busy.stop()
        await spare.stop()


async def _second_while_first_is_slow(env: Env, path: str, body: dict[str, Any]) -> httpx.Response:
    """Send ``body`` while another request holds the busy provider's only slot (retried until the executor has
    applied the limits, which reach it through the config snapshot)."""
    headers = {"Authorization": f"Bearer {env.key}", "x-api-key": env.key, "anthropic-version": "2023-06-01"}
    result: list[httpx.Response] = []

    async def attempt() -> None:
        env.busy.script.append(Reply(json=env.busy.completion("m1"), delay_s=1.0))
        first_body = {"model": "qbusy/m1", "messages": USER}
        async with httpx.AsyncClient(base_url=env.edge, headers=headers, timeout=10) as http:
            first = asyncio.create_task(http.post("/v1/chat/completions", json=first_body))
            await asyncio.sleep(0.3)
            before, spare_before = len(env.busy.requests), len(env.spare.requests)
            second = await http.post(path, json=body)
            assert (await first).status_code == 200
        assert len(env.busy.requests) == before  # the refused request never reached the busy provider
        if body["model"].startswith("qbusy/"):
            assert second.status_code == 503, second.text
        else:
            assert len(env.spare.requests) == spare_before + 1
        result.append(second)

    await until_ok(attempt, timeout=10)
    return result[-1]


async def test_openai_client_gets_503_with_retry_after(env: Env) -> None:
    resp = await _second_while_first_is_slow(env, "/v1/chat/completions", {"model": "qbusy/m1", "messages": USER})
    assert resp.headers["retry-after"] == "1"
    error = resp.json()["error"]
    assert error["code"] == "upstream_busy" and "concurrency limit" in error["message"]


async def test_anthropic_client_gets_503_with_retry_after_in_its_format(env: Env) -> None:
    body = {"model": "qbusy/m1", "max_tokens": 16, "messages": USER}
    resp = await _second_while_first_is_slow(env, "/v1/messages", body)
    assert resp.headers["retry-after"] == "1"
    doc = resp.json()
    assert doc["type"] == "error" and "concurrency limit" in doc["error"]["message"]


async def test_a_combo_falls_back_to_the_next_provider(env: Env) -> None:
    resp = await _second_while_first_is_slow(env, "/v1/chat/completions", {"model": "qcombo", "messages": USER})
    assert resp.status_code == 200, resp.text
    assert env.spare.requests[-1].json["model"] == "m2"
