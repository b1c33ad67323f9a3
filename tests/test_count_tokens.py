"""``/v1/messages/count_tokens`` through the whole suite with the official ``anthropic`` SDK: counted offline by
the translator (no upstream sees a request), for an Anthropic and an OpenAI provider behind the same endpoint,
and errors in Anthropic's envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest

from omniroute_devservers.control import make_key, make_provider, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.fake_providers import FakeAnthropic
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

WEATHER_TOOL = {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {
                "type": "string",
                "description": "The unit of temperature to return",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        "required": ["location"],
    },
}
SYSTEM = "You are a helpful assistant that can answer to questions about the weather."
QUESTION = "What's the weather like in San Francisco?"


@dataclass
class Env:
    client: anthropic.AsyncAnthropic
    upstreams: tuple[FakeOpenAI, FakeAnthropic]


@pytest.fixture(scope="module")
async def env(admin: httpx.AsyncClient, suite: Suite, fake_openai: FakeOpenAI) -> AsyncIterator[Env]:
    fake_anthropic = FakeAnthropic()
    await fake_anthropic.start()
    await make_provider(admin, "anthropic", fake_anthropic.base_url)
    _, key = await make_key(admin)
    client = anthropic.AsyncAnthropic(base_url=suite.edge_url, api_key=key, max_retries=0)

    async def probe() -> None:  # the key and the connection are live once a count answers
        await client.messages.count_tokens(
            model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "ping"}]
        )

    await until_ok(probe, timeout=15)
    try:
        yield Env(client, (fake_openai, fake_anthropic))
    finally:
        await client.close()
        await fake_anthropic.stop()


async def test_counts_system_messages_and_tools_offline(env: Env) -> None:
    before = [len(u.requests) for u in env.upstreams]
    counted = await env.client.messages.count_tokens(
        model="openai/gpt-4o",
        system=SYSTEM,
        messages=[{"role": "user", "content": QUESTION}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    # the OpenAI cookbook's tool example, for which OpenAI's API reported 101 prompt tokens on gpt-4o
    assert counted.input_tokens == 101
    assert [len(u.requests) for u in env.upstreams] == before


async def test_the_resolved_model_picks_the_tokenizer(env: Env) -> None:
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": QUESTION}]
    claude = await env.client.messages.count_tokens(model="anthropic/claude-sonnet-4-5", messages=messages)
    gpt4o = await env.client.messages.count_tokens(model="openai/gpt-4o", messages=messages)
    assert claude.input_tokens == gpt4o.input_tokens > 6  # both families use o200k and the same framing
    image: dict[str, Any] = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    with_image = await env.client.messages.count_tokens(
        model="anthropic/claude-sonnet-4-5",
        messages=[{"role": "user", "content": [image, {"type": "text", "text": QUESTION}]}],  # type: ignore[misc,list-item]
    )
    assert with_image.input_tokens == claude.input_tokens + 1600


async def test_unknown_model_is_anthropics_not_found(env: Env) -> None:
    with pytest.raises(anthropic.NotFoundError) as exc:
        await env.client.messages.count_tokens(model="nosuchprovider/x", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.body is not None
    assert exc.value.response.json()["type"] == "error"


async def test_malformed_body_is_anthropics_invalid_request(env: Env) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        await env.client.messages.count_tokens(
            model="anthropic/claude-sonnet-4-5",
            messages=[{"role": "user", "content": [{"text": "no type"}]}],  # type: ignore[misc,list-item]
        )
    body = exc.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
