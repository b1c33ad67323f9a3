"""The common part of fake providers: an HTTP server on loopback that records every request it receives and
answers from a script, or by default as its provider would. Subclasses speak one wire format each.

Tests assert the exact request the gateway sent (``requests``) and script failures (``script``): a status with
a JSON or raw body, an SSE/NDJSON stream with delays, a stream cut before its terminal event, a slow first byte
or no answer at all.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from omniroute_core import jsonx
from omniroute_devservers.servers import free_port

__all__ = ["REASONING", "SIGNATURE", "TEXT", "FakeUpstream", "Recorded", "Reply", "tool_call_of", "words"]

TEXT = "Hello from the fake upstream"
# the reasoning every fake returns when the request asks for it (Anthropic ``thinking``, OpenAI ``reasoning_effort``,
# Gemini ``thinkingConfig.includeThoughts``, Ollama ``think``, Responses ``reasoning``); Anthropic signs it
REASONING = "The user wants the weather in Paris"
SIGNATURE = "c2lnLWZha2UtdXBzdHJlYW0="
# the tool call every fake makes when the request offers tools: the first tool, with these arguments
TOOL_ARGS = {"city": "Paris"}


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
    terminal: bool = True  # send data: [DONE] after ``events``
    hang: bool = False  # never answer
    frames: list[bytes] = field(default_factory=list)  # raw stream frames, written as given
    content_type: str = "text/event-stream"


def words(text: str) -> list[str]:
    """``text`` in streaming pieces: its words, each after the first with its leading space."""
    return [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]


def tool_call_of(tool_names: list[str]) -> tuple[str, dict[str, Any]] | None:
    """The call a fake makes for a request offering ``tool_names`` (None when it offers none)."""
    return (tool_names[0], TOOL_ARGS) if tool_names else None


class FakeUpstream:
    """Subclasses implement :meth:`default` (the reply when nothing is scripted) and :attr:`base_url`."""

    prefix = ""

    def __init__(self, text: str = TEXT) -> None:
        self.text = text
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def default(self, request: Recorded) -> Reply:
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = Recorded(request.method, request.path_qs, dict(request.headers), body)
        self.requests.append(recorded)
        if self.script:
            reply = self.script.popleft()
        else:
            try:
                reply = self.default(recorded)
            except ValueError:
                reply = Reply(status=400, json={"error": {"message": "bad request body"}})
        if reply.hang:
            await asyncio.sleep(3600)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.raw is not None or reply.json is not None:
            data = reply.raw if reply.raw is not None else jsonx.dumps(reply.json)
            if "Content-Type" in reply.headers:  # a raw reply of another media type (text, an image)
                return web.Response(status=reply.status, body=data, headers=reply.headers)
            return web.Response(status=reply.status, body=data, headers=reply.headers, content_type="application/json")
        resp = web.StreamResponse(status=reply.status, headers={"Content-Type": reply.content_type, **reply.headers})
        await resp.prepare(request)
        frames = reply.frames or [b"data: " + e + b"\n\n" for e in reply.events]
        for frame in frames:
            await resp.write(frame)
            if reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
        if reply.terminal and reply.events and not reply.frames:
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
