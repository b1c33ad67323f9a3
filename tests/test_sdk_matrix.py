"""Official SDK conformance: the openai (Chat and Responses), anthropic, google-genai and ollama clients, pointed at
the edge, each against each provider format behind it (fake upstreams speaking the real wire formats: OpenAI Chat,
OpenAI Responses, Anthropic, Gemini, Ollama). Every SDK parses every reply and stream and sees the same text, tool
call and usage, whatever provider served it; the anthropic client with thinking on also gets the provider's
reasoning as a thinking block."""

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

from omniroute_devservers.control import config_synced, make_key, make_provider, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.fake_providers import FakeAnthropic, FakeGemini, FakeOllama, FakeResponses
from omniroute_devservers.fake_upstream import REASONING, SIGNATURE, TEXT, TOOL_ARGS, FakeUpstream
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

PROVIDERS = {
    "openai": "openai/gpt-4o",
    "openai-responses": "openai-responses/gpt-4o",
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
    thinking: list[tuple[str, str]] | None = None  # (text, signature) of each thinking block (anthropic client)
    reasoning: str = ""  # the reasoning text the client read, in its own vocabulary


@dataclass
class Env:
    edge: str
    key: str
    fakes: dict[str, FakeUpstream]


@pytest.fixture(scope="module")
async def env(admin: httpx.AsyncClient, suite: Suite, fake_openai: FakeOpenAI) -> AsyncIterator[Env]:
    fakes: dict[str, FakeUpstream] = {"openai": fake_openai}
    started: list[tuple[str, FakeUpstream]] = [
        ("openai-responses", FakeResponses()),
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
    await config_synced(admin, [suite.edge_url])
    environment = Env(suite.edge_url, key, fakes)
    for model in PROVIDERS.values():

        async def probe(model: str = model) -> None:
            outcome = await openai_chat(environment, model, stream=False, tools=False)
            assert outcome.text == TEXT

        await until_ok(probe, timeout=5)
    yield environment
    for _, fake in started:
        await fake.stop()


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def openai_chat(env: Env, model: str, *, stream: bool, tools: bool, thinking: bool = False) -> Outcome:
    """Reasoning is asked with ``reasoning_effort`` and read from ``reasoning_content`` (message or deltas)."""
    async with openai.AsyncOpenAI(base_url=env.edge + "/v1", api_key=env.key, max_retries=0) as client:
        kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "weather in Paris?"}]}
        if thinking:
            kwargs["reasoning_effort"] = "low"
        if tools:
            kwargs["tools"] = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}}]
        if not stream:
            done = await client.chat.completions.create(**kwargs)
            message = done.choices[0].message
            calls = [(c.function.name, openai_args(c.function.arguments)) for c in message.tool_calls or []]
            assert done.usage is not None
            said = str((message.model_extra or {}).get("reasoning_content") or "")
            u = done.usage
            return Outcome(message.content or "", calls, u.prompt_tokens, u.completion_tokens, reasoning=said)
        text, reasoning = "", ""
        args: dict[int, str] = {}
        names: dict[int, str] = {}
        usage = None
        events = await client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        async for chunk in events:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                reasoning += str((choice.delta.model_extra or {}).get("reasoning_content") or "")
                for call in choice.delta.tool_calls or []:
                    if call.function and call.function.name:
                        names[call.index] = call.function.name
                    args[call.index] = args.get(call.index, "") + ((call.function and call.function.arguments) or "")
        assert usage is not None
        calls = [(names[i], openai_args(args[i])) for i in sorted(names)]
        return Outcome(text, calls, usage.prompt_tokens, usage.completion_tokens, reasoning=reasoning)


async def openai_responses(env: Env, model: str, *, stream: bool, tools: bool, thinking: bool = False) -> Outcome:
    """``client.responses.create``: plain, or streamed (text from ``output_text.delta`` events, calls from
    ``output_item.done``, usage from ``response.completed``, which must carry the same output). Reasoning is asked
    with ``reasoning={"effort": "low", "summary": "auto"}`` and read from the reasoning items' summaries."""
    async with openai.AsyncOpenAI(base_url=env.edge + "/v1", api_key=env.key, max_retries=0) as client:
        kwargs: dict[str, Any] = {"model": model, "input": "weather in Paris?"}
        if thinking:
            kwargs["reasoning"] = {"effort": "low", "summary": "auto"}
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
    said = "".join(s.text for o in done.output if o.type == "reasoning" for s in o.summary)
    return Outcome(done.output_text, calls, done.usage.input_tokens, done.usage.output_tokens, reasoning=said)


def openai_args(raw: str) -> dict[str, Any]:
    from omniroute_core import jsonx

    value = jsonx.loads(raw)
    assert isinstance(value, dict)
    return value


async def anthropic_messages(env: Env, model: str, *, stream: bool, tools: bool, thinking: bool = False) -> Outcome:
    async with anthropic.AsyncAnthropic(base_url=env.edge, api_key=env.key, max_retries=0) as client:
        kwargs: dict[str, Any] = {
            "model": model,
            "max_tokens": 2048 if thinking else 256,
            "messages": [{"role": "user", "content": "weather in Paris?"}],
        }
        if thinking:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": 1024}
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
    thoughts = [(b.thinking, b.signature) for b in message.content if b.type == "thinking"]
    return Outcome(text, calls, total_in, u.output_tokens, thoughts, "".join(t for t, _ in thoughts))


async def gemini_generate(env: Env, model: str, *, stream: bool, tools: bool, thinking: bool = False) -> Outcome:
    """Reasoning is asked with ``thinking_config`` (budget 1024, include_thoughts) and read from ``thought`` parts."""
    client = genai.Client(api_key=env.key, http_options=gtypes.HttpOptions(base_url=env.edge))
    config = gtypes.GenerateContentConfig(
        thinking_config=gtypes.ThinkingConfig(thinking_budget=1024, include_thoughts=True) if thinking else None,
        tools=[
            gtypes.Tool(
                function_declarations=[gtypes.FunctionDeclaration(name="weather", parameters_json_schema=WEATHER)]
            )
        ]
        if tools
        else None,
    )
    chunks: list[gtypes.GenerateContentResponse] = []
    if stream:
        async for chunk in await client.aio.models.generate_content_stream(
            model=model, contents="weather?", config=config
        ):
            chunks.append(chunk)
    else:
        chunks.append(await client.aio.models.generate_content(model=model, contents="weather?", config=config))
    text, reasoning, calls = "", "", []
    usage = None
    for chunk in chunks:
        usage = chunk.usage_metadata or usage
        for candidate in chunk.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.text and not part.thought:
                    text += part.text
                elif part.text:
                    reasoning += part.text
                if part.function_call:
                    calls.append((part.function_call.name or "", dict(part.function_call.args or {})))
    assert usage is not None
    output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    return Outcome(text, calls, usage.prompt_token_count or 0, output, reasoning=reasoning)


async def ollama_chat(env: Env, model: str, *, stream: bool, tools: bool, thinking: bool = False) -> Outcome:
    """Reasoning is asked with ``think=True`` and read from ``message.thinking``."""
    async with ollama.AsyncClient(host=env.edge + "/v1", headers={"Authorization": f"Bearer {env.key}"}) as client:
        return await _ollama_chat(client, model, stream=stream, tools=tools, thinking=thinking)


async def _ollama_chat(
    client: ollama.AsyncClient, model: str, *, stream: bool, tools: bool, thinking: bool = False
) -> Outcome:
    kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "weather in Paris?"}]}
    if thinking:
        kwargs["think"] = True
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
    said = "".join(p.message.thinking or "" for p in parts)
    return Outcome(text, calls, last.prompt_eval_count or 0, last.eval_count or 0, reasoning=said)


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


# How ``thinking={"type": "enabled", "budget_tokens": 1024}`` reaches each provider format (translator README:
# a budget ≤1024 is effort "low"; Gemini always asks for the thoughts when thinking is on; Ollama's ``think`` is
# a boolean), read from the request the fake received.
ASKED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "openai": lambda body: body.get("reasoning_effort") == "low",
    "openai-responses": lambda body: body.get("reasoning") == {"effort": "low"},
    "anthropic": lambda body: body.get("thinking") == {"type": "enabled", "budget_tokens": 1024},
    "gemini": lambda body: (
        body["generationConfig"].get("thinkingConfig") == {"thinkingBudget": 1024, "includeThoughts": True}
    ),
    "ollama": lambda body: body.get("think") is True,
}

# The thinking blocks the anthropic client gets back, per provider format: (text, signature). Only a signature the
# provider issued on the reasoning itself comes back, i.e. Anthropic's own (pass-through). OpenAI Chat
# (``reasoning_content``), Gemini (``thought`` parts; its ``thoughtSignature`` on a function call goes to the tool
# call, which Anthropic cannot carry) and Ollama (``message.thinking``) have none: the README's drop table specifies
# "(added) unsigned reasoning", a thinking block with an empty signature.
# OpenAI Responses: the codec asks only for ``reasoning.effort`` (README: "``reasoning.effort`` ↔
# ``reasoning_effort``"; ``reasoning.summary`` has no hub field), and OpenAI then returns a reasoning item with an
# empty summary and no readable text (its ``encrypted_content`` is dropped, README "OpenAI Responses, response /
# stream from a provider"). So no thinking block can be produced: the answer is the same, without reasoning.
THOUGHTS = {
    "openai": [(REASONING, "")],
    "openai-responses": [],
    "anthropic": [(REASONING, SIGNATURE)],
    "gemini": [(REASONING, "")],
    "ollama": [(REASONING, "")],
}


@pytest.mark.parametrize("mode", ["plain", "stream", "tools", "stream-tools"])
@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_anthropic_sdk_with_thinking_against_every_provider_format(env: Env, provider: str, mode: str) -> None:
    """``thinking`` reaches each provider in its own vocabulary, and its reasoning comes back as one thinking block
    before the same answer text or tool call, with the same usage (as far as the provider format can carry it)."""
    tools = "tools" in mode
    outcome = await anthropic_messages(env, PROVIDERS[provider], stream="stream" in mode, tools=tools, thinking=True)
    assert ASKED[provider](env.fakes[provider].requests[-1].json)
    assert outcome.thinking == THOUGHTS[provider]
    if tools:
        assert outcome.calls == [("weather", TOOL_ARGS)]
    else:
        assert outcome.text == TEXT
        assert outcome.calls == []
    assert (outcome.input_tokens, outcome.output_tokens) == (11, 7)


@pytest.mark.parametrize("mode", ["plain", "stream", "stream-tools"])
@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("client", list(CLIENTS))
async def test_every_sdk_reads_reasoning_from_every_provider_format(
    env: Env, client: str, provider: str, mode: str
) -> None:
    """Each client asks for reasoning in its own vocabulary and reads the provider's reasoning text where its format
    carries it, beside the same answer and usage. From a Responses provider only a Responses client gets text back:
    the codec asks no other client's provider request for a ``reasoning.summary`` (see THOUGHTS above)."""
    tools = "tools" in mode
    outcome = await CLIENTS[client](env, PROVIDERS[provider], stream="stream" in mode, tools=tools, thinking=True)
    readable = provider != "openai-responses" or client == "openai-responses"
    assert outcome.reasoning == (REASONING if readable else "")
    if tools:
        assert outcome.calls == [("weather", TOOL_ARGS)]
    else:
        assert (outcome.text, outcome.calls) == (TEXT, [])
    assert (outcome.input_tokens, outcome.output_tokens) == (11, 7)
