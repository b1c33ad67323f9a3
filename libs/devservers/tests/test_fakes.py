"""The fake providers speak the real wire formats: their replies validate against the official SDKs' types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic.types
import ollama
import pydantic
import pytest
from google.genai import types as gtypes

from omniroute_core import jsonx
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.fake_providers import FakeAnthropic, FakeGemini, FakeOllama
from omniroute_devservers.fake_upstream import FakeUpstream

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
