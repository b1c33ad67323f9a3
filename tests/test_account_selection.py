"""Account selection end to end: two connections (accounts) of one provider, each its own fake upstream, ordered by
the gateway-wide routing settings and a per-provider override, with a failing account skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from omniroute_devservers.control import config_synced, make_key, make_provider, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

PROVIDER = "nvidia"  # chat-capable, OpenAI format, used by no other cross-service test
MODEL = f"{PROVIDER}/meta/llama-3.3-70b-instruct"


@pytest.fixture(scope="module")
async def accounts(admin: httpx.AsyncClient, suite: Suite) -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI, str]]:
    a, b = FakeOpenAI(), FakeOpenAI()
    await a.start()
    await b.start()
    await make_provider(admin, PROVIDER, a.base_url, api_key="sk-account-a")
    await make_provider(admin, PROVIDER, b.base_url, api_key="sk-account-b")
    _, key = await make_key(admin)
    await config_synced(admin, [suite.edge_url])
    try:
        yield a, b, key
    finally:
        await admin.put("/api/settings/routing", json={"providers": {PROVIDER: None}, "accountStrategy": None})
        await a.stop()
        await b.stop()


async def chat(suite: Suite, key: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=15) as http:
        return await http.post(
            suite.edge_url + "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        )


def served_by(a: FakeOpenAI, b: FakeOpenAI, before: tuple[int, int]) -> str:
    """Which account took the one request sent since ``before`` (request counts of a and b)."""
    grew = (len(a.requests) - before[0], len(b.requests) - before[1])
    assert sorted(grew) == [0, 1], grew
    return "a" if grew[0] else "b"


async def test_round_robin_with_a_sticky_limit_for_one_provider(
    admin: httpx.AsyncClient, suite: Suite, accounts: tuple[FakeOpenAI, FakeOpenAI, str]
) -> None:
    a, b, key = accounts
    resp = await admin.put(
        "/api/settings/routing", json={"providers": {PROVIDER: {"accountStrategy": "round-robin", "stickyLimit": 2}}}
    )
    assert resp.status_code == 200, resp.text
    await config_synced(admin, [suite.edge_url])

    async def sequence() -> list[str]:
        order = []
        for _ in range(8):
            before = (len(a.requests), len(b.requests))
            assert (await chat(suite, key)).status_code == 200
            order.append(served_by(a, b, before))
        return order

    # the executor applies the snapshot a moment after the edge: retry until the rotation shows
    seen: list[list[str]] = []

    async def rotates() -> None:
        order = await sequence()
        seen.append(order)
        pairs = [order[i : i + 2] for i in range(0, 8, 2)]
        assert all(p[0] == p[1] for p in pairs[1:]) and len({p[0] for p in pairs}) == 2, order

    await until_ok(rotates, timeout=10)
    assert {r.headers.get("Authorization") for r in a.requests} == {"Bearer sk-account-a"}
    assert {r.headers.get("Authorization") for r in b.requests} == {"Bearer sk-account-b"}


async def test_fill_first_keeps_one_account_and_falls_over_when_it_fails(
    admin: httpx.AsyncClient, suite: Suite, accounts: tuple[FakeOpenAI, FakeOpenAI, str]
) -> None:
    a, b, key = accounts
    resp = await admin.put("/api/settings/routing", json={"providers": {PROVIDER: {"accountStrategy": "fill-first"}}})
    assert resp.status_code == 200, resp.text

    async def steady() -> None:
        firsts = set()
        for _ in range(4):
            before = (len(a.requests), len(b.requests))
            assert (await chat(suite, key)).status_code == 200
            firsts.add(served_by(a, b, before))
        assert len(firsts) == 1

    await until_ok(steady, timeout=10)
    # the account fill-first prefers answers 503 once: the request is served by the other one
    preferred, other = (a, b) if len(a.requests) > len(b.requests) else (b, a)
    preferred.script.append(Reply(status=503, json={"error": {"message": "overloaded", "type": "server_error"}}))
    counts = (len(preferred.requests), len(other.requests))
    resp = await chat(suite, key)
    assert resp.status_code == 200, resp.text
    assert (len(preferred.requests) - counts[0], len(other.requests) - counts[1]) == (1, 1)
