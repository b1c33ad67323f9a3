"""Official SDK conformance: the openai (Chat and Responses), anthropic, google-genai and ollama clients, pointed at
the edge, each against each provider format behind it (fake upstreams speaking the real wire formats). Every SDK
parses every reply and stream and sees the same text, tool call and usage, whatever provider served it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from omniroute_devservers.control import make_key, make_provider, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.fake_providers import FakeAnthropic, FakeGemini, FakeOllama
from omniroute_devservers.fake_upstream import TEXT, TOOL_ARGS, FakeUpstream
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

PROVIDERS = {
    "openai": "openai/gpt-4o",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "ollama": "ollama/llama3.2",
}


@dataclass
class Outcome:
    """What a client saw, in one vocabulary: text, tool calls (name, args) and input/output token totals."""

    text: str
    calls: list[tuple[str, dict[str, Any]]]
    input_tokens: int
    output_tokens: int


@dataclass
class Env:
    edge: str
    key: str
    fakes: dict[str, FakeUpstream]


@pytest.fixture(scope="module")
async def env(admin: httpx.AsyncClient, suite: Suite, fake_openai: FakeOpenAI) -> AsyncIterator[Env]:
    fakes: dict[str, FakeUpstream] = {"openai": fake_openai}
    started: list[tuple[str, FakeUpstream]] = [
        ("anthropic", FakeAnthropic()),
        ("gemini", FakeGemini()),
        ("ollama", FakeOllama()),
    ]
    for name, fake in started:
        await fake.start()
        fakes[name] = fake
    for name, upstream in started:  # 'openai' is registered once for the session (conftest)
        await make_provider(admin, name, upstream.base_url)
    _, key = await make_key(admin)
    environment = Env(suite.edge_url, key, fakes)
    for model in PROVIDERS.values():

        async def probe(model: str = model) -> None:
            outcome = await openai_chat(environment, model, stream=False, tools=False)
            assert outcome.text == TEXT

        await until_ok(probe, timeout=5)
    yield environment
    for name in ("anthropic", "gemini", "ollama"):
        await fakes[name].stop()


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def openai_chat(env: Env, model: str, *, stream: bool, tools: bool) -> Outcome:
    async with openai.AsyncOpenAI(base_url=env.edge + "/v1", api_key=env.key, max_retries=0) as client:
        kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "weather in Paris?"}]}
        if tools:
            kwargs["tools"] = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}}]
        if not stream:
            done = await client.chat.completions.create(**kwargs)
            message = done.choices[0].message
            calls = [(c.function.name, openai_args(c.function.arguments)) for c in message.tool_calls or []]
            assert done.usage is not None
            return Outcome(message.content or "", calls, done.usage.prompt_tokens, done.usage.completion_tokens)
        text = ""
        args: dict[int, str] = {}
        names: dict[int, str] = {}
        usage = None
        events = await client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        async for chunk in events:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or []:
                    if call.function and call.function.name:
                        names[call.index] = call.function.name
                    args[call.index] = args.get(call.index, "") + ((call.function and call.function.arguments) or "")
        assert usage is not None
        calls = [(names[i], openai_args(args[i])) for i in sorted(names)]
        return Outcome(text, calls, usage.prompt_tokens, usage.completion_tokens)


async def openai_responses(env: Env, model: str, *, stream: bool, tools: bool) -> Outcome:
    """``client.responses.create``: plain, or streamed (text from ``output_text.delta`` events, calls from
    ``output_item.done``, usage from ``response.completed``, which must carry the same output)."""
    async with openai.AsyncOpenAI(base_url=env.edge + "/v1", api_key=env.key, max_retries=0) as client:
        kwargs: dict[str, Any] = {"model": model, "input": "weather in Paris?"}
        if tools:
            kwargs["tools"] = [{"type": "function", "name": "weather", "parameters": WEATHER, "strict": False}]
        if not stream:
            done = await client.responses.create(**kwargs)
        else:
            text, items, final = "", [], None
            async for event in await client.responses.create(**kwargs, stream=True):
                if event.type == "response.output_text.delta":
                    text += event.delta
                elif event.type == "response.output_item.done":
                    items.append(event.item)
                elif event.type == "response.completed":
                    final = event.response
            assert final is not None and final.output == items and final.output_text == text
            done = final
    calls = [(o.name, openai_args(o.arguments)) for o in done.output if o.type == "function_call"]
    assert done.usage is not None
    return Outcome(done.output_text, calls, done.usage.input_tokens, done.usage.output_tokens)


def openai_args(raw: str) -> dict[str, Any]:
    from omniroute_core import jsonx

    value = jsonx.loads(raw)
    assert isinstance(value, dict)
    return value


async def anthropic_messages(env: Env, model: str, *, stream: bool, tools: bool) -> Outcome:
    async with anthropic.AsyncAnthropic(base_url=env.edge, api_key=env.key, max_retries=0) as client:
        kwargs: dict[str, Any] = {
            "model": model,
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "weather in Paris?"}],
        }
        if tools:
            kwargs["tools"] = [{"name": "weather", "input_schema": WEATHER}]
        if stream:
            async with client.messages.stream(**kwargs) as events:
                async for _ in events:
                    pass
                message = await events.get_final_message()
        else:
            message = await client.messages.create(**kwargs)
    text = "".join(b.text for b in message.content if b.type == "text")
    calls = [(b.name, dict(b.input)) for b in message.content if b.type == "tool_use"]
    u = message.usage
    total_in = u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
    return Outcome(text, calls, total_in, u.output_tokens)


async def gemini_generate(env: Env, model: str, *, stream: bool, tools: bool) -> Outcome:
    client = genai.Client(api_key=env.key, http_options=gtypes.HttpOptions(base_url=env.edge))
    config = gtypes.GenerateContentConfig(
        tools=[
            gtypes.Tool(
                function_declarations=[gtypes.FunctionDeclaration(name="weather", parameters_json_schema=WEATHER)]
            )
        ]
        if tools
        else None
    )
    chunks: list[gtypes.GenerateContentResponse] = []
    if stream:
        async for chunk in await client.aio.models.generate_content_stream(
            model=model, contents="weather?", config=config
        ):
            chunks.append(chunk)
    else:
        chunks.append(await client.aio.models.generate_content(model=model, contents="weather?", config=config))
    text, calls = "", []
    usage = None
    for chunk in chunks:
        usage = chunk.usage_metadata or usage
        for candidate in chunk.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.text and not part.thought:
                    text += part.text
                if part.function_call:
                    calls.append((part.function_call.name or "", dict(part.function_call.args or {})))
    assert usage is not None
    output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    return Outcome(text, calls, usage.prompt_token_count or 0, output)


async def ollama_chat(env: Env, model: str, *, stream: bool, tools: bool) -> Outcome:
    async with ollama.AsyncClient(host=env.edge + "/v1", headers={"Authorization": f"Bearer {env.key}"}) as client:
        return await _ollama_chat(client, model, stream=stream, tools=tools)


async def _ollama_chat(client: ollama.AsyncClient, model: str, *, stream: bool, tools: bool) -> Outcome:
    kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "weather in Paris?"}]}
    if tools:
        kwargs["tools"] = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}}]
    parts: list[ollama.ChatResponse] = []
    if stream:
        async for part in await client.chat(**kwargs, stream=True):
            parts.append(part)
    else:
        parts.append(await client.chat(**kwargs, stream=False))
    text = "".join(p.message.content or "" for p in parts)
    calls = [(c.function.name, dict(c.function.arguments)) for p in parts for c in p.message.tool_calls or []]
    last = parts[-1]
    assert last.done
    return Outcome(text, calls, last.prompt_eval_count or 0, last.eval_count or 0)


CLIENTS: dict[str, Callable[..., Awaitable[Outcome]]] = {
    "openai": openai_chat,
    "openai-responses": openai_responses,
    "anthropic": anthropic_messages,
    "gemini": gemini_generate,
    "ollama": ollama_chat,
}


@pytest.mark.parametrize("mode", ["plain", "stream", "tools", "stream-tools"])
@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("client", list(CLIENTS))
async def test_every_sdk_against_every_provider_format(env: Env, client: str, provider: str, mode: str) -> None:
    tools = "tools" in mode
    outcome = await CLIENTS[client](env, PROVIDERS[provider], stream="stream" in mode, tools=tools)
    if tools:
        assert outcome.calls == [("weather", TOOL_ARGS)]
    else:
        assert outcome.text == TEXT
        assert outcome.calls == []
    assert (outcome.input_tokens, outcome.output_tokens) == (11, 7)
