"""The fake providers speak the real wire formats: their replies validate against the official SDKs' types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic.types
import ollama
import openai.types.chat
import openai.types.responses
import pydantic
import pytest
from google.genai import types as gtypes

from omniroute_core import jsonx
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.fake_providers import FakeAnthropic, FakeGemini, FakeOllama, FakeResponses
from omniroute_devservers.fake_upstream import REASONING, SIGNATURE, TEXT, FakeUpstream

TOOLS_OPENAI = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def started(fake: FakeUpstream) -> FakeUpstream:
    await fake.start()
    return fake


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
    async with http.post(url, data=jsonx.dumps(body)) as resp:
        return resp.status, await resp.read(), resp.headers["Content-Type"]


def sse_payloads(raw: bytes) -> list[Any]:
    return [
        jsonx.loads(line[5:])
        for line in raw.replace(b"\r\n", b"\n").split(b"\n")
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]"
    ]


@pytest.mark.parametrize("tools", [False, True])
async def test_anthropic_fake_matches_the_sdk_types(http: aiohttp.ClientSession, tools: bool) -> None:
    fake = await started(FakeAnthropic())
    try:
        body: dict[str, Any] = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        if tools:
            body["tools"] = [{"name": "weather", "input_schema": {"type": "object"}}]
        _, raw, _ = await post(http, fake.base_url + "/messages", body)
        message = anthropic.types.Message.model_validate_json(raw)
        assert message.stop_reason == ("tool_use" if tools else "end_turn")
        _, raw, ctype = await post(http, fake.base_url + "/messages", {**body, "stream": True})
        assert ctype.startswith("text/event-stream")
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
        # ping is a keep-alive the SDK skips; it is not part of the typed event union
        events = [adapter.validate_python(p) for p in sse_payloads(raw) if p["type"] != "ping"]
        assert events[0].type == "message_start"
        assert events[-1].type == "message_stop"
    finally:
        await fake.stop()


@pytest.mark.parametrize("tools", [False, True])
async def test_gemini_fake_matches_the_sdk_types(http: aiohttp.ClientSession, tools: bool) -> None:
    fake = await started(FakeGemini())
    try:
        body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        if tools:
            body["tools"] = [{"functionDeclarations": [{"name": "weather"}]}]
        _, raw, _ = await post(http, fake.base_url + "/models/gemini-x:generateContent", body)
        whole = gtypes.GenerateContentResponse.model_validate_json(raw)
        assert (whole.text is None) == tools
        _, raw, _ = await post(http, fake.base_url + "/models/gemini-x:streamGenerateContent?alt=sse", body)
        chunks = [gtypes.GenerateContentResponse.model_validate(p) for p in sse_payloads(raw)]
        assert chunks[-1].candidates is not None
        assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP
    finally:
        await fake.stop()


@pytest.mark.parametrize("tools", [False, True])
async def test_ollama_fake_matches_the_sdk_types(http: aiohttp.ClientSession, tools: bool) -> None:
    fake = await started(FakeOllama())
    try:
        body: dict[str, Any] = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "stream": False}
        if tools:
            body["tools"] = TOOLS_OPENAI
        _, raw, _ = await post(http, fake.base_url + "/api/chat", body)
        assert ollama.ChatResponse.model_validate_json(raw).done
        _, raw, ctype = await post(http, fake.base_url + "/api/chat", {**body, "stream": True})
        assert ctype.startswith("application/x-ndjson")
        lines = [ollama.ChatResponse.model_validate_json(line) for line in raw.splitlines() if line]
        assert lines[-1].done
        assert lines[-1].eval_count == 7
    finally:
        await fake.stop()


async def test_openai_fake_calls_the_offered_tool(http: aiohttp.ClientSession) -> None:
    fake = await started(FakeOpenAI())
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS_OPENAI}
        _, raw, _ = await post(http, fake.base_url + "/chat/completions", body)
        call = jsonx.loads(raw)["choices"][0]["message"]["tool_calls"][0]["function"]
        assert call == {"name": "weather", "arguments": '{"city":"Paris"}'}
    finally:
        await fake.stop()


@pytest.mark.parametrize("tools", [False, True])
async def test_responses_fake_matches_the_sdk_types(http: aiohttp.ClientSession, tools: bool) -> None:
    fake = await started(FakeResponses())
    try:
        body: dict[str, Any] = {"model": "gpt-x", "input": "hi"}
        if tools:
            body["tools"] = [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": False}]
        _, raw, _ = await post(http, fake.base_url + "/responses", body)
        whole = openai.types.responses.Response.model_validate_json(raw)
        assert whole.usage is not None and (whole.usage.input_tokens, whole.usage.output_tokens) == (11, 7)
        assert whole.usage.input_tokens_details.cached_tokens == 3 and whole.usage.total_tokens == 18
        if tools:
            call = whole.output[0]
            assert call.type == "function_call" and (call.name, call.arguments) == ("weather", '{"city":"Paris"}')
        else:
            assert whole.output_text == TEXT
        _, raw, ctype = await post(http, fake.base_url + "/responses", {**body, "stream": True})
        assert ctype.startswith("text/event-stream")
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(openai.types.responses.ResponseStreamEvent)
        events = [adapter.validate_python(p) for p in sse_payloads(raw)]
        names = [e.type for e in events]
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
        assert names[-2:] == ["response.output_item.done", "response.completed"]
        if tools:
            assert "response.function_call_arguments.done" in names
            args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
            assert args == '{"city":"Paris"}'
        else:
            assert names[3:-2] == [
                "response.content_part.added",
                *["response.output_text.delta"] * len(TEXT.split(" ")),
                "response.output_text.done",
                "response.content_part.done",
            ]
            assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TEXT
        assert events[-1].response.output == whole.output and events[-1].response.usage == whole.usage
    finally:
        await fake.stop()


async def test_every_fake_returns_reasoning_when_asked(http: aiohttp.ClientSession) -> None:
    """Each fake's reasoning, whole and streamed, in its own vocabulary, validated by its SDK's types."""
    msgs = [{"role": "user", "content": "hi"}]
    fakes: list[FakeUpstream] = [FakeAnthropic(), FakeOpenAI(), FakeGemini(), FakeOllama(), FakeResponses()]
    for fake in fakes:
        await fake.start()
    anthropic_fake, openai_fake, gemini_fake, ollama_fake, responses_fake = fakes
    try:
        body: dict[str, Any] = {
            "model": "c",
            "max_tokens": 2048,
            "messages": msgs,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        }
        _, raw, _ = await post(http, anthropic_fake.base_url + "/messages", body)
        block = anthropic.types.Message.model_validate_json(raw).content[0]
        assert block.type == "thinking" and (block.thinking, block.signature) == (REASONING, SIGNATURE)
        _, raw, _ = await post(http, anthropic_fake.base_url + "/messages", {**body, "stream": True})
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
        deltas = [adapter.validate_python(p) for p in sse_payloads(raw) if p["type"] == "content_block_delta"]
        assert "".join(d.delta.thinking for d in deltas if d.delta.type == "thinking_delta") == REASONING
        assert [d.delta.signature for d in deltas if d.delta.type == "signature_delta"] == [SIGNATURE]

        body = {"model": "o", "messages": msgs, "reasoning_effort": "low"}
        _, raw, _ = await post(http, openai_fake.base_url + "/chat/completions", body)
        message = openai.types.chat.ChatCompletion.model_validate_json(raw).choices[0].message
        assert message.model_extra == {"reasoning_content": REASONING}
        _, raw, _ = await post(http, openai_fake.base_url + "/chat/completions", {**body, "stream": True})
        chunks = [openai.types.chat.ChatCompletionChunk.model_validate(p) for p in sse_payloads(raw)]
        assert "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks) == REASONING

        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        body["generationConfig"] = {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
        _, raw, _ = await post(http, gemini_fake.base_url + "/models/g:generateContent", body)
        whole = gtypes.GenerateContentResponse.model_validate_json(raw)
        assert whole.candidates and whole.candidates[0].content and whole.candidates[0].content.parts
        first = whole.candidates[0].content.parts[0]
        assert (first.text, first.thought, whole.text) == (REASONING, True, TEXT)
        assert whole.usage_metadata and whole.usage_metadata.thoughts_token_count == 2
        _, raw, _ = await post(http, gemini_fake.base_url + "/models/g:streamGenerateContent?alt=sse", body)
        parts = [
            part
            for p in sse_payloads(raw)
            for c in gtypes.GenerateContentResponse.model_validate(p).candidates or []
            for part in (c.content.parts if c.content else None) or []
        ]
        assert "".join(p.text or "" for p in parts if p.thought) == REASONING

        body = {"model": "l", "messages": msgs, "think": True, "stream": False}
        _, raw, _ = await post(http, ollama_fake.base_url + "/api/chat", body)
        assert ollama.ChatResponse.model_validate_json(raw).message.thinking == REASONING
        _, raw, _ = await post(http, ollama_fake.base_url + "/api/chat", {**body, "stream": True})
        lines = [ollama.ChatResponse.model_validate_json(line) for line in raw.splitlines() if line]
        assert "".join(line.message.thinking or "" for line in lines) == REASONING

        body = {"model": "o", "input": "hi", "reasoning": {"effort": "low", "summary": "auto"}}
        _, raw, _ = await post(http, responses_fake.base_url + "/responses", body)
        response = openai.types.responses.Response.model_validate_json(raw)
        item = response.output[0]
        assert item.type == "reasoning" and [s.text for s in item.summary] == [REASONING]
        assert response.usage and response.usage.output_tokens_details.reasoning_tokens == 2
        _, raw, _ = await post(http, responses_fake.base_url + "/responses", {**body, "stream": True})
        adapter = pydantic.TypeAdapter(openai.types.responses.ResponseStreamEvent)
        events = [adapter.validate_python(p) for p in sse_payloads(raw)]
        summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
        assert summary == REASONING and events[-1].response.output == response.output
        _, raw, _ = await post(http, responses_fake.base_url + "/responses", {**body, "reasoning": {"effort": "low"}})
        item = openai.types.responses.Response.model_validate_json(raw).output[0]
        assert item.type == "reasoning" and item.summary == []  # no summary unless asked, as OpenAI does
    finally:
        for fake in fakes:
            await fake.stop()
