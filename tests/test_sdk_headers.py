"""The gateway's own headers as the official SDKs see them: X-OmniRoute-Cache on replies, X-OmniRoute-Idempotent on
a duplicate, X-OmniRoute-Progress on a stream (whose progress frames must not disturb the SDK's stream parser)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from omniroute_devservers.control import config_synced, make_key, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.fake_upstream import TEXT
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

MODEL = "openai/gpt-4o"


@pytest.fixture(scope="module")
async def key(admin: httpx.AsyncClient, suite: Suite, fake_openai: FakeOpenAI) -> AsyncIterator[str]:
    _, key = await make_key(admin)
    await config_synced(admin, [suite.edge_url])
    client = openai.AsyncOpenAI(base_url=suite.edge_url + "/v1", api_key=key, max_retries=0)

    async def probe() -> None:
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])

    await until_ok(probe, timeout=5)
    yield key
    await client.close()


@pytest.fixture
async def oai(suite: Suite, key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=suite.edge_url + "/v1", api_key=key, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def claude(suite: Suite, key: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=suite.edge_url, api_key=key, max_retries=0)
    yield client
    await client.close()


def unique() -> str:
    return f"say hi {uuid.uuid4().hex}"


async def test_openai_sdk_sees_cache_miss_then_hit(oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": unique()}]
    first = await oai.chat.completions.with_raw_response.create(model=MODEL, messages=messages, temperature=0)
    assert first.headers["x-omniroute-cache"] == "MISS"
    before = len(fake_openai.requests)
    second = await oai.chat.completions.with_raw_response.create(model=MODEL, messages=messages, temperature=0)
    assert second.headers["x-omniroute-cache"] == "HIT"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content == TEXT
    assert len(fake_openai.requests) == before
    bypass = await oai.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=messages,
        temperature=0,
        extra_headers={"X-OmniRoute-No-Cache": "true"},
    )
    assert "x-omniroute-cache" not in bypass.headers
    assert len(fake_openai.requests) == before + 1


async def test_openai_sdk_sees_a_duplicate_marked_idempotent(oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": unique()}]
    before = len(fake_openai.requests)
    first = await oai.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=messages,
        temperature=0.9,
        extra_headers=headers,
    )
    again = await oai.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=messages,
        temperature=0.9,
        extra_headers=headers,
    )
    assert "x-omniroute-idempotent" not in first.headers
    assert again.headers["x-omniroute-idempotent"] == "true"
    assert again.parse().id == first.parse().id
    assert len(fake_openai.requests) == before + 1


async def test_openai_sdk_streams_with_progress_frames(oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append(_slow_stream(fake_openai))
    async with oai.chat.completions.with_streaming_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": unique()}],
        stream=True,
        extra_headers={"X-OmniRoute-Progress": "true"},
    ) as response:
        assert response.headers["x-omniroute-progress"] == "enabled"
        chunks = [c async for c in await response.parse()]
    # the SDK hands a progress frame over as a chunk without choices (as it does a usage chunk); it stops reading
    # at [DONE], so the final frame marked done is never seen by it
    progress = [c for c in chunks if not c.choices]
    assert progress, chunks
    assert all(isinstance(getattr(c, "tokens", None), int) for c in progress), progress
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT


async def test_anthropic_sdk_sees_cache_headers_and_streams_with_progress(
    claude: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI
) -> None:
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": unique()}]
    first = await claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=messages, extra_body={"temperature": 0}
    )
    second = await claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=messages, extra_body={"temperature": 0}
    )
    assert (first.headers["x-omniroute-cache"], second.headers["x-omniroute-cache"]) == ("MISS", "HIT")
    assert (await second.parse()).content == (await first.parse()).content

    fake_openai.script.append(_slow_stream(fake_openai))
    async with claude.messages.with_streaming_response.create(
        model=MODEL,
        max_tokens=16,
        messages=[{"role": "user", "content": unique()}],
        stream=True,
        extra_headers={"X-OmniRoute-Progress": "true"},
    ) as response:
        assert response.headers["x-omniroute-progress"] == "enabled"
        events = [e async for e in await response.parse()]
    # the SDK hands a progress frame over as an event of no known type; its own helpers skip those
    progress = [e for e in events if e.type is None]
    assert progress
    assert getattr(progress[-1], "done", None) is True, progress
    typed = [e for e in events if e.type is not None]
    text = "".join(e.delta.text for e in typed if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == TEXT
    assert typed[0].type == "message_start"
    assert typed[-1].type == "message_stop"

    fake_openai.script.append(_slow_stream(fake_openai))
    async with claude.messages.stream(
        model=MODEL,
        max_tokens=16,
        messages=[{"role": "user", "content": unique()}],
        extra_headers={"X-OmniRoute-Progress": "true"},
    ) as stream:
        assert await stream.get_final_text() == TEXT


def _slow_stream(fake: FakeOpenAI) -> Reply:
    """The fake's usual stream with 0.6 s between events, so the edge's 2 s progress frames fall inside it."""
    return Reply(events=fake.chunks(MODEL, include_usage=False), chunk_delay_s=0.6)
