"""``/api/sessions`` end to end: two edges record the conversations they serve in Redis; the control plane shows
them by key with request counts summed across the replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from omniroute_devservers.control import config_synced, make_key, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

MODEL = "openai/session-model"


@pytest.fixture(scope="module")
async def edges(suite: Suite) -> AsyncIterator[tuple[str, str]]:
    a = suite.start_service("edge", key="edge-sess-a")
    b = suite.start_service("edge", key="edge-sess-b")
    yield f"http://127.0.0.1:{a}", f"http://127.0.0.1:{b}"
    suite.stop_service("edge-sess-a")
    suite.stop_service("edge-sess-b")


def turns(first: str, *more: str) -> list[dict[str, str]]:
    out = [{"role": "system", "content": "be brief"}, {"role": "user", "content": first}]
    for i, text in enumerate(more):
        out += [{"role": "assistant", "content": f"answer {i}"}, {"role": "user", "content": text}]
    return out


async def post(base: str, path: str, body: dict[str, Any], key: str, **headers: str) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        resp = await http.post(base + path, json=body, headers={"Authorization": f"Bearer {key}", **headers})
    assert resp.status_code == 200, resp.text


async def test_sessions_by_key_with_counts_across_edges(
    admin: httpx.AsyncClient, edges: tuple[str, str], fake_openai: FakeOpenAI
) -> None:
    (key_id, key), (other_id, other) = await make_key(admin), await make_key(admin)
    await config_synced(admin, list(edges))
    a, b = edges
    # one conversation over three turns, alternating edges
    await post(a, "/v1/chat/completions", {"model": MODEL, "messages": turns("plan a trip")}, key)
    await post(b, "/v1/chat/completions", {"model": MODEL, "messages": turns("plan a trip", "Rome")}, key)
    await post(a, "/v1/chat/completions", {"model": MODEL, "messages": turns("plan a trip", "Rome", "3 days")}, key)
    # another conversation of the same key, in the Anthropic format
    anthropic = {"model": MODEL, "max_tokens": 8, "system": "be brief",
                 "messages": [{"role": "user", "content": "write a haiku"}]}  # fmt: skip
    await post(b, "/v1/messages", anthropic, key)
    # a client that names its own session: two different first messages, one session
    for text in ("one", "two"):
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        await post(a, "/v1/chat/completions", body, other, **{"X-Session-Id": "agent-7"})

    doc: dict[str, Any] = {}
    mine: dict[str, Any] = {}

    async def recorded() -> None:
        doc.update((await admin.get("/api/sessions", params={"keyId": key_id})).json())
        assert doc["count"] == 2
        assert sorted(s["requestCount"] for s in doc["sessions"]) == [1, 3]
        assert doc["byApiKey"][key_id] == 2
        assert doc["byApiKey"][other_id] == 1
        mine.update((await admin.get("/api/sessions", params={"keyId": other_id})).json())
        assert mine["sessions"][0]["requestCount"] == 2

    await until_ok(recorded, timeout=5)
    for session in doc["sessions"]:
        assert session["apiKeyId"] == key_id
        assert session["model"] == MODEL
        assert session["lastActive"] >= session["createdAt"]
    assert [s["sessionId"] for s in mine["sessions"]] == ["ext:agent-7"]
    everything = (await admin.get("/api/sessions")).json()
    assert everything["count"] >= 3


async def test_sessions_need_a_dashboard_login(suite: Suite) -> None:
    async with httpx.AsyncClient(base_url=suite.edge_url, timeout=10) as anonymous:
        resp = await anonymous.get("/api/sessions")
    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "authentication_error"
