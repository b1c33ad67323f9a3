"""One real chat request across every service: edge → executor → an OpenAI-compatible upstream → back,
metered through JetStream into PostgreSQL, configured through the dashboard. The official openai SDK is the
client; the upstream is a fake that speaks OpenAI's wire format and records the exact request it received."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import openai
import pytest

from omniroute_core import jsonx
from omniroute_devservers.control import config_synced, make_key, make_provider, until_ok
from omniroute_devservers.fake_openai import USAGE, FakeOpenAI, Reply
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e


class Clients:
    """Official SDK clients that are all closed at the end of the module (their sockets too)."""

    def __init__(self) -> None:
        self._open: list[openai.AsyncOpenAI] = []

    def __call__(self, base_url: str, key: str) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0)
        self._open.append(client)
        return client

    async def close(self) -> None:
        for client in self._open:
            await client.close()


@pytest.fixture(scope="module")
async def sdk() -> AsyncIterator[Clients]:
    clients = Clients()
    yield clients
    await clients.close()


@pytest.fixture(scope="module")
async def openai_ready(
    admin: httpx.AsyncClient, suite: Suite, fake_openai: FakeOpenAI, sdk: Clients
) -> tuple[str, str]:
    """A chat key, live on the data plane together with the session's 'openai' connection (conftest)."""
    key_id, key = await make_key(admin)
    await config_synced(admin, [suite.edge_url])
    client = sdk(suite.edge_url + "/v1", key)

    async def probe() -> None:
        await client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "ping"}])

    await until_ok(probe, timeout=5)
    return key_id, key


async def stored_usage(suite: Suite, request_id: str, timeout: float = 10) -> asyncpg.Record:
    conn = await asyncpg.connect(suite.database_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = await conn.fetchrow("SELECT * FROM usage_events WHERE request_id = $1", request_id)
            if row is not None:
                return row
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"no usage row for request {request_id}")


async def test_chat_with_the_openai_sdk(
    suite: Suite, fake_openai: FakeOpenAI, openai_ready: tuple[str, str], sdk: Clients
) -> None:
    key_id, key = openai_ready
    client = sdk(suite.edge_url + "/v1", key)
    rid = uuid.uuid4().hex
    completion = await client.chat.completions.create(
        model="openai/gpt-4o",
        messages=[{"role": "user", "content": "Say hello"}],
        temperature=0,
        extra_headers={"X-Request-Id": rid},
    )
    assert completion.choices[0].message.content == fake_openai.text
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 7)
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer sk-upstream-key"
    assert sent.json == {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}], "temperature": 0}

    row = await stored_usage(suite, rid)
    assert row["key_id"] == key_id
    assert (row["provider"], row["model"], row["status"]) == ("openai", "gpt-4o", 200)
    assert (row["input_tokens"], row["output_tokens"], row["cached_input_tokens"]) == (11, 7, 3)
    assert row["latency_ms"] >= 0


async def test_streaming_chat_with_the_openai_sdk(
    suite: Suite, fake_openai: FakeOpenAI, openai_ready: tuple[str, str], sdk: Clients
) -> None:
    key_id, key = openai_ready
    client = sdk(suite.edge_url + "/v1", key)
    rid = uuid.uuid4().hex
    stream = await client.chat.completions.create(
        model="openai/gpt-4o",
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        extra_headers={"X-Request-Id": rid},
    )
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == fake_openai.text
    assert fake_openai.requests[-1].json["stream_options"] == {"include_usage": True}
    row = await stored_usage(suite, rid)
    assert (row["stream"], row["status"], row["output_tokens"]) == (True, 200, USAGE["completion_tokens"])
    assert row["key_id"] == key_id


async def test_stream_reaches_the_client_before_the_upstream_finishes(
    suite: Suite, fake_openai: FakeOpenAI, openai_ready: tuple[str, str]
) -> None:
    _, key = openai_ready
    events = fake_openai.chunks("gpt-4o", include_usage=True)
    fake_openai.script.append(Reply(events=events, chunk_delay_s=0.25))
    body = {"model": "openai/gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=10) as http:
        start = time.monotonic()
        async with http.stream(
            "POST", suite.edge_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            chunks = resp.aiter_raw()
            first = await anext(chunks)
            first_at = time.monotonic() - start
            rest = b"".join([c async for c in chunks])
        total = time.monotonic() - start
    assert first.startswith(b"data: ")
    # the upstream needs len(events) * 0.25 s; the first bytes must not wait for that
    assert first_at < total / 2
    assert (first + rest).endswith(b"data: [DONE]\n\n")


async def test_a_new_key_is_live_on_the_edge_within_a_second(
    admin: httpx.AsyncClient, suite: Suite, openai_ready: tuple[str, str], sdk: Clients
) -> None:
    _, key = await make_key(admin)
    client = sdk(suite.edge_url + "/v1", key)
    # keys are not required on the default edge, so prove liveness on the key-requiring edge
    port = suite.start_service("edge", key="edge-keys", overrides={"REQUIRE_API_KEY": "true"})
    strict = sdk(f"http://127.0.0.1:{port}/v1", key)
    _, fresh = await make_key(admin)
    strict_fresh = sdk(f"http://127.0.0.1:{port}/v1", fresh)

    async def call() -> None:
        await strict_fresh.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])

    assert await until_ok(call, timeout=1.0) <= 1.0
    await strict.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
    await client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])


def error_of(resp: httpx.Response) -> dict[str, Any]:
    assert resp.headers["content-type"].startswith("application/json")
    doc = jsonx.loads(resp.content)
    assert set(doc) == {"error"}
    assert {"message", "type"} <= set(doc["error"])
    return dict(doc["error"])


async def post_chat(
    suite: Suite, body: bytes, headers: dict[str, str] | None = None, port: int | None = None
) -> httpx.Response:
    base = f"http://127.0.0.1:{port}" if port else suite.edge_url
    async with httpx.AsyncClient(timeout=15) as http:
        return await http.post(base + "/v1/chat/completions", content=body,
                               headers={"content-type": "application/json", **(headers or {})})  # fmt: skip


async def test_malformed_json_is_400(suite: Suite) -> None:
    resp = await post_chat(suite, b'{"model": "openai/gpt-4o", "messages": [')
    assert resp.status_code == 400
    assert error_of(resp)["type"] == "invalid_request_error"


async def test_missing_model_is_400(suite: Suite) -> None:
    resp = await post_chat(suite, b'{"messages": []}')
    assert resp.status_code == 400
    assert error_of(resp)["param"] == "model"


async def test_unknown_provider_is_404_and_unconfigured_provider_is_400(suite: Suite) -> None:
    resp = await post_chat(suite, b'{"model": "nosuch/thing", "messages": []}')
    assert resp.status_code == 404
    assert error_of(resp)["code"] == "model_not_found"
    resp = await post_chat(suite, b'{"model": "openrouter/some-model", "messages": []}')
    assert resp.status_code == 400
    assert error_of(resp)["code"] == "provider_not_configured"


async def test_missing_or_bad_key_is_401_when_keys_are_required(suite: Suite, admin: httpx.AsyncClient) -> None:
    port = suite.ports.get("edge-keys") or suite.start_service(
        "edge", key="edge-keys", overrides={"REQUIRE_API_KEY": "true"}
    )
    body = b'{"model": "openai/gpt-4o", "messages": []}'
    resp = await post_chat(suite, body, port=port)
    assert resp.status_code == 401
    assert error_of(resp)["type"] == "authentication_error"
    resp = await post_chat(suite, body, {"Authorization": "Bearer sk-omni-not-a-real-key"}, port=port)
    assert resp.status_code == 401


async def test_upstream_refusing_connections_is_502(suite: Suite, admin: httpx.AsyncClient) -> None:
    from omniroute_devservers.servers import free_port

    await make_provider(admin, "groq", f"http://127.0.0.1:{free_port()}/v1")
    body = b'{"model": "groq/llama-3.3-70b-versatile", "messages": [{"role": "user", "content": "x"}]}'

    async def refused() -> None:
        resp = await post_chat(suite, body)
        assert resp.status_code == 502, resp.text

    await until_ok(refused, timeout=5)
    resp = await post_chat(suite, body)
    assert error_of(resp)["type"] == "upstream_error"


async def test_upstream_timeout_is_504(suite: Suite, admin: httpx.AsyncClient) -> None:
    silent = FakeOpenAI()
    await silent.start()
    try:
        await make_provider(admin, "deepseek", silent.base_url)
        body = b'{"model": "deepseek/deepseek-chat", "messages": [{"role": "user", "content": "x"}]}'

        async def timed_out() -> None:
            silent.script.append(Reply(hang=True))
            resp = await post_chat(suite, body)
            assert resp.status_code == 504, resp.text

        await until_ok(timed_out, timeout=10)
    finally:
        await silent.stop()


async def test_executor_down_is_503(suite: Suite, openai_ready: tuple[str, str]) -> None:
    suite.stop_service("executor")
    try:
        resp = await post_chat(suite, b'{"model": "openai/gpt-4o", "messages": []}')
        assert resp.status_code == 503
        assert error_of(resp)["type"] == "service_unavailable"
    finally:
        suite.start_service("executor")

    async def recovered() -> None:
        resp = await post_chat(suite, b'{"model": "openai/gpt-4o", "messages": []}')
        assert resp.status_code == 200, resp.text

    # the edge's channel reconnects within its 1 s backoff cap
    assert await until_ok(recovered, timeout=3) < 3


async def test_progress_frames_are_interleaved_when_asked(
    suite: Suite, fake_openai: FakeOpenAI, openai_ready: tuple[str, str]
) -> None:
    _, key = openai_ready
    events = fake_openai.chunks("gpt-4o", include_usage=False)
    fake_openai.script.append(Reply(events=events, chunk_delay_s=4.5 / len(events)))
    body = {"model": "openai/gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}", "X-OmniRoute-Progress": "true"}
    async with httpx.AsyncClient(timeout=20) as http:
        resp = await http.post(suite.edge_url + "/v1/chat/completions", json=body, headers=headers)
    assert resp.headers["x-omniroute-progress"] == "enabled"
    frames = [f for f in resp.content.split(b"\n\n") if f]
    progress = [jsonx.loads(f.split(b"data: ", 1)[1]) for f in frames if f.startswith(b"event: progress")]
    assert len(progress) >= 2
    assert progress[-1]["done"] is True
    assert all("done" not in p for p in progress[:-1])
    assert progress[-1]["tokens"] >= len(events)
    assert progress[-1]["elapsedMs"] >= 4000
    # every other frame is the upstream's own event, untouched and in order
    upstream = [f for f in frames if not f.startswith(b"event: progress")]
    assert upstream == [b"data: " + e for e in events] + [b"data: [DONE]"]
    plain = await post_chat(suite, jsonx.dumps({**body, "stream": False}), {"Authorization": f"Bearer {key}"})
    assert "x-omniroute-progress" not in plain.headers
