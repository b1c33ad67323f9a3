"""The routing configuration across every service: provider nodes (an OpenAI-compatible and an Anthropic-compatible
endpoint with their own prefixes and custom headers), aliases and custom models configured through the dashboard,
requests from the official SDKs routed through them, the global system prompt and thinking budget applied in each
provider's format, and what the executors record (lockouts, rate-limit headers) read back through the dashboard.
The fake upstreams assert the exact request they receive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

from omniroute_devservers.control import config_synced, make_key, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.fake_providers import FakeAnthropic
from omniroute_devservers.fake_upstream import REASONING, TEXT
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

ACME_HEADERS = {"X-Tenant": "acme", "X-Node-Secret": "s3cr3t-node-value-42"}
USER: Any = [{"role": "user", "content": "Say hello"}]  # typed Any: the SDKs' message types and plain JSON


@dataclass
class Env:
    key: str
    acme: FakeOpenAI
    corp: FakeAnthropic
    oai: openai.AsyncOpenAI
    claude: anthropic.AsyncAnthropic
    acme_connection: str


async def node(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await admin.post("/api/provider-nodes", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture(scope="module")
async def env(admin: httpx.AsyncClient, suite: Suite) -> AsyncIterator[Env]:
    acme, corp = FakeOpenAI(), FakeAnthropic()
    await acme.start()
    await corp.start()
    created = await node(
        admin, name="ACME vLLM", prefix="acme", baseUrl=acme.base_url, headers=ACME_HEADERS, apiKey="sk-acme-node"
    )
    await node(
        admin,
        name="Corp gateway",
        prefix="corp",
        type="anthropic-compatible",
        baseUrl=corp.base_url + "/messages",  # the full Messages URL is accepted, as in OmniRoute
        customHeaders={"X-Corp": "1"},
        apiKey="sk-corp-node",
    )
    body = {"provider": "corp", "modelId": "claude-corp-1", "reasoning": True}
    assert (await admin.post("/api/provider-models", json=body)).status_code == 201
    for alias, model in (("team-fast", "acme/llama-3-8b"), ("team-smart", "corp/claude-corp-1")):
        assert (await admin.post("/api/models/alias", json={"alias": alias, "model": model})).status_code == 201
    _, key = await make_key(admin)
    await config_synced(admin, [suite.edge_url])
    oai = openai.AsyncOpenAI(base_url=suite.edge_url + "/v1", api_key=key, max_retries=0)
    claude = anthropic.AsyncAnthropic(base_url=suite.edge_url, api_key=key, max_retries=0)

    async def probe() -> None:
        for model in ("team-fast", "team-smart"):
            completion = await oai.chat.completions.create(model=model, messages=USER)
            assert completion.choices[0].message.content == TEXT

    await until_ok(probe, timeout=5)
    try:
        yield Env(key, acme, corp, oai, claude, str(created["connectionId"]))
    finally:
        await oai.close()
        await claude.close()
        await acme.stop()
        await corp.stop()


async def test_an_alias_routes_to_an_openai_compatible_node_with_its_headers(env: Env) -> None:
    completion = await env.oai.chat.completions.create(model="team-fast", messages=USER, temperature=0)
    assert completion.choices[0].message.content == TEXT
    sent = env.acme.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {"model": "llama-3-8b", "messages": USER, "temperature": 0}
    assert sent.headers["Authorization"] == "Bearer sk-acme-node"
    assert (sent.headers["X-Tenant"], sent.headers["X-Node-Secret"]) == ("acme", "s3cr3t-node-value-42")


async def test_a_dedicated_provider_route_knows_the_node_prefix(env: Env, suite: Suite) -> None:
    dedicated = openai.AsyncOpenAI(base_url=suite.edge_url + "/v1/providers/acme", api_key=env.key, max_retries=0)
    try:
        completion = await dedicated.chat.completions.create(model="llama-3-8b", messages=USER)
        assert completion.choices[0].message.content == TEXT
        assert env.acme.requests[-1].json == {"model": "llama-3-8b", "messages": USER}
        with pytest.raises(openai.BadRequestError) as info:
            await dedicated.chat.completions.create(model="corp/claude-corp-1", messages=USER)
        assert "belongs to provider" in str(info.value)
    finally:
        await dedicated.close()


async def test_a_bare_custom_model_infers_the_anthropic_compatible_node(env: Env) -> None:
    completion = await env.oai.chat.completions.create(model="claude-corp-1", messages=USER)
    assert completion.choices[0].message.content == TEXT
    sent = env.corp.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.json == {"model": "claude-corp-1", "max_tokens": 4096, "messages": USER}
    assert sent.headers["x-api-key"] == "sk-corp-node" and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["X-Corp"] == "1" and "Authorization" not in sent.headers


@pytest.fixture
async def request_settings(admin: httpx.AsyncClient, env: Env) -> AsyncIterator[None]:
    """A global system prompt and a custom thinking budget, live on the data plane; afterwards switched off again
    (and seen off), since the suite is shared with the other cross-service tests."""
    prompt = {"enabled": True, "prefixPrompt": "Company rules apply.", "suffixPrompt": "Answer briefly."}
    assert (await admin.put("/api/settings/system-prompt", json=prompt)).status_code == 200
    assert (
        await admin.put("/api/settings/thinking-budget", json={"mode": "custom", "customBudget": 2048})
    ).status_code == 200

    async def applied(expected: bool) -> None:
        await env.oai.chat.completions.create(model="team-fast", messages=USER)
        first = env.acme.requests[-1].json["messages"][0]
        assert (first["role"] == "system") is expected

    await until_ok(lambda: applied(True), timeout=5)
    try:
        yield
    finally:
        prompt = {"enabled": True, "prefixPrompt": "", "suffixPrompt": ""}
        assert (await admin.put("/api/settings/system-prompt", json=prompt)).status_code == 200
        assert (await admin.put("/api/settings/thinking-budget", json={"mode": "passthrough"})).status_code == 200
        await until_ok(lambda: applied(False), timeout=5)


@pytest.mark.usefixtures("request_settings")
async def test_system_prompt_and_thinking_budget_in_openai_format(env: Env) -> None:
    completion = await env.oai.chat.completions.create(
        model="team-fast",
        messages=[{"role": "system", "content": "You are ACME's assistant."}, *USER],
        reasoning_effort="low",
    )
    assert completion.choices[0].message.content == TEXT
    assert (completion.choices[0].message.model_extra or {}).get("reasoning_content") == REASONING
    assert env.acme.requests[-1].json == {
        "model": "llama-3-8b",
        "messages": [
            {"role": "system", "content": "Company rules apply.\n\nYou are ACME's assistant.\n\nAnswer briefly."},
            *USER,
        ],
        "reasoning_effort": "medium",  # the 2048-token budget replaced the client's "low"
    }
    assert env.acme.requests[-1].headers["X-Tenant"] == "acme"

    stream = await env.oai.chat.completions.create(model="team-fast", messages=USER, stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == TEXT
    assert env.acme.requests[-1].json == {
        "model": "llama-3-8b",
        "messages": [{"role": "system", "content": "Company rules apply.\n\nAnswer briefly."}, *USER],
        "stream": True,
        "stream_options": {"include_usage": True},  # asked on the client's behalf and hidden from it
    }


@pytest.mark.usefixtures("request_settings")
async def test_system_prompt_and_thinking_budget_in_anthropic_format(env: Env) -> None:
    message = await env.claude.messages.create(
        model="team-smart", max_tokens=8000, system="Be kind.", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert env.corp.requests[-1].json == {
        "model": "claude-corp-1",
        "max_tokens": 8000,
        "system": "Company rules apply.\n\nBe kind.\n\nAnswer briefly.",
        "messages": USER,
        # a model marked as reasoning gets the budget although the client did not ask
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    sent = env.corp.requests[-1].headers
    assert (sent["x-api-key"], sent["X-Corp"]) == ("sk-corp-node", "1")


async def test_availability_and_rate_limits_read_what_the_executor_recorded(admin: httpx.AsyncClient, env: Env) -> None:
    check = (await admin.post("/api/models/availability", json={"model": "team-fast"})).json()
    assert check["available"] is True and check["resolution"]["aliases"] == ["team-fast"]
    assert [(t["prefix"], t["model"], t["connectionId"]) for t in check["targets"]] == [
        ("acme", "llama-3-8b", env.acme_connection)
    ]

    limits = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "42"}
    env.acme.script.append(Reply(json=env.acme.completion("llama-3-8b"), headers=limits))
    missing = {"error": {"message": "no such model", "type": "invalid_request_error", "code": "model_not_found"}}
    env.acme.script.append(Reply(status=404, json=missing))
    await env.oai.chat.completions.create(model="team-fast", messages=USER)
    with pytest.raises(openai.NotFoundError):
        await env.oai.chat.completions.create(model="acme/retired-model", messages=USER)

    async def recorded() -> None:
        entries = (await admin.get("/api/rate-limits", params={"provider": "acme"})).json()["connections"]
        assert entries[0]["requests"]["remaining"] == 42 and entries[0]["requests"]["limit"] == 100

    await until_ok(recorded, timeout=5)  # written by the executor's background flush
    locked = (await admin.post("/api/models/availability", json={"model": "acme/retired-model"})).json()
    assert locked["available"] is False and locked["retryAfterMs"] > 0
    (skipped,) = locked["skipped"]
    assert skipped["state"] == "locked_out" and "HTTP 404" in skipped["reason"]
    report = (await admin.get("/api/models/availability")).json()
    acme = next(p for p in report["providers"] if p["prefix"] == "acme")
    assert acme["connections"][0]["lockouts"][0]["model"] == "retired-model"
    requests_before = len(env.acme.requests)
    with pytest.raises(openai.APIStatusError) as info:  # not sent again while locked out
        await env.oai.chat.completions.create(model="acme/retired-model", messages=USER)
    assert info.value.status_code == 503 and len(env.acme.requests) == requests_before


async def test_unknown_and_ambiguous_names_are_errors_in_the_clients_format(env: Env) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await env.oai.chat.completions.create(model="no-such-model", messages=USER)
    assert "no provider, alias or combo has that name" in str(missing.value)
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await env.claude.messages.create(model="nope/x", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert "unknown provider 'nope'" in str(unknown.value)
