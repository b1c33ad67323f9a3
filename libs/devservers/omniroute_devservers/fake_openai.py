"""A fake OpenAI-compatible upstream that speaks the real wire format and records what it receives.

Tests script its replies (status, JSON, SSE events with delays, a stream cut before ``[DONE]``, a slow first
byte) and assert the exact request the gateway sent. Without a script it answers like OpenAI's Chat
Completions: a JSON completion, or an SSE stream (with the usage chunk when ``stream_options.include_usage``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from omniroute_core import jsonx
from omniroute_devservers.servers import free_port

__all__ = ["FakeOpenAI", "Recorded", "Reply"]

USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 3},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return jsonx.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    events: list[bytes] = field(default_factory=list)  # raw SSE payloads sent as "data: <payload>\n\n"
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the first byte
    chunk_delay_s: float = 0.0  # between SSE events
    terminal: bool = True  # send data: [DONE]
    hang: bool = False  # never answer


class FakeOpenAI:
    def __init__(self, text: str = "Hello from the fake upstream") -> None:
        self.text = text
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def completion(self, model: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }

    def chunks(self, model: str, include_usage: bool) -> list[bytes]:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model}
        words = self.text.split(" ")
        out = [jsonx.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            out.append(jsonx.dumps({**base, "choices": [{"index": 0, "delta": {"content": piece}}]}))
        out.append(jsonx.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if include_usage:
            out.append(jsonx.dumps({**base, "choices": [], "usage": USAGE}))
        return out

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        reply = self.script.popleft() if self.script else self._default(body)
        if reply.hang:
            await asyncio.sleep(3600)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.raw is not None or reply.json is not None:
            data = reply.raw if reply.raw is not None else jsonx.dumps(reply.json)
            return web.Response(status=reply.status, body=data, headers=reply.headers, content_type="application/json")
        resp = web.StreamResponse(status=reply.status, headers={"Content-Type": "text/event-stream", **reply.headers})
        await resp.prepare(request)
        for event in reply.events:
            await resp.write(b"data: " + event + b"\n\n")
            if reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
        if reply.terminal:
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _default(self, body: bytes) -> Reply:
        try:
            doc = jsonx.loads(body)
        except ValueError:
            return Reply(status=400, json={"error": {"message": "bad json", "type": "invalid_request_error"}})
        model = str(doc.get("model", ""))
        if doc.get("stream"):
            include = bool((doc.get("stream_options") or {}).get("include_usage"))
            return Reply(events=self.chunks(model, include))
        return Reply(json=self.completion(model))
