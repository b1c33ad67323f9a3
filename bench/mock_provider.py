"""A fast OpenAI Chat Completions mock provider for the benchmark, on raw asyncio protocols, uvloop and httptools.

``python bench/mock_provider.py --port N [--latency-ms L] [--chunks C] [--chunk-delay-ms D]`` listens on
127.0.0.1:N until SIGTERM/SIGINT and answers:

- ``POST …/chat/completions``: after ``L`` ms, a JSON completion (``stream`` absent or false), or an SSE stream of
  one role chunk, ``C`` content chunks and a finish chunk ``D`` ms apart, then at once (as a provider sends
  them when generation ends) a usage chunk when ``stream_options.include_usage`` is true and ``data: [DONE]``.
  Each SSE event is one HTTP chunk. The reply echoes the request's ``model``. A body that is not a JSON object is a 400.
- ``GET /stats``: ``{"chat": <chat completions answered since start>}`` (the benchmark detects cache hits by
  whether this count moves).
- ``GET /health``: 200. Anything else: 404.

It is deliberately far cheaper per request than any gateway (no framework, canned bytes, keep-alive), so that the
benchmark measures the gateway and not the mock.
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, bench/ is first on the path: the repository root instead, for the bench.* imports
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import signal
import time
from dataclasses import dataclass
from typing import cast

import httptools
import uvloop

from bench.pacer import Pacer
from omniroute_core import jsonx

__all__ = ["Profile", "serve"]

TEXT_PIECES = ("Hello", " from", " the", " benchmark", " mock", ".")
USAGE = {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}
_MAX_CACHED_MODELS = 64


@dataclass(frozen=True, slots=True)
class Profile:
    """How the mock paces its replies: ``latency_s`` before the first byte, ``chunks`` content chunks in a stream,
    ``chunk_delay_s`` between consecutive stream events."""

    latency_s: float = 0.0
    chunks: int = 10
    chunk_delay_s: float = 0.001


class _Replies:
    """Canned reply bytes per model, built once (a benchmark sees one or two models)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._json: dict[str, bytes] = {}
        self._sse: dict[tuple[str, bool], list[bytes]] = {}

    def completion(self, model: str) -> bytes:
        cached = self._json.get(model)
        if cached is None:
            cached = jsonx.dumps({
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(TEXT_PIECES)},
                    "finish_reason": "stop",
                }],
                "usage": USAGE,
            })  # fmt: skip
            if len(self._json) >= _MAX_CACHED_MODELS:
                self._json.clear()  # bounded: random model names must not grow the mock without limit
            self._json[model] = cached
        return cached

    def events(self, model: str, include_usage: bool) -> list[bytes]:
        """The stream as HTTP chunks (size line, SSE event, CRLF), the terminating zero chunk last."""
        key = (model, include_usage)
        cached = self._sse.get(key)
        if cached is None:
            head = {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
            }

            def chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
                return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

            docs: list[object] = [chunk({"role": "assistant", "content": ""}, None)]
            docs += [chunk({"content": TEXT_PIECES[i % len(TEXT_PIECES)]}, None) for i in range(self.profile.chunks)]
            docs.append(chunk({}, "stop"))
            if include_usage:
                docs.append({**head, "choices": [], "usage": USAGE})
            payloads = [b"data: " + jsonx.dumps(d) + b"\n\n" for d in docs] + [b"data: [DONE]\n\n"]
            cached = [b"%x\r\n%s\r\n" % (len(p), p) for p in payloads] + [b"0\r\n\r\n"]
            if len(self._sse) >= _MAX_CACHED_MODELS:
                self._sse.clear()
            self._sse[key] = cached
        return cached


class _Stats:
    def __init__(self) -> None:
        self.chat = 0


def _response(status: bytes, content_type: bytes, body: bytes, keep_alive: bool) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type
        + b"\r\ncontent-length: " + str(len(body)).encode()
        + b"\r\nconnection: " + connection + b"\r\n\r\n" + body
    )  # fmt: skip


_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
)


class _Connection(asyncio.Protocol):
    """One client connection; requests are answered in order (clients of a benchmark do not pipeline)."""

    def __init__(self, replies: _Replies, stats: _Stats, pacer: Pacer) -> None:
        self.replies = replies
        self.stats = stats
        self.pacer = pacer
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.streaming: asyncio.Future[None] | None = None  # held so the task is not collected mid-stream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(_response(b"400 Bad Request", b"text/plain", b"bad request", keep_alive=False), close=True)

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        keep_alive = self.parser.should_keep_alive()
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self._chat(b"".join(self.body), keep_alive)
        elif method == b"GET" and path == b"/stats":
            body = jsonx.dumps({"chat": self.stats.chat})
            self._write(_response(b"200 OK", b"application/json", body, keep_alive), close=not keep_alive)
        elif method == b"GET" and path == b"/health":
            self._write(_response(b"200 OK", b"text/plain", b"ok", keep_alive), close=not keep_alive)
        else:
            self._write(_response(b"404 Not Found", b"text/plain", b"not found", keep_alive), close=not keep_alive)

    def _chat(self, raw: bytes, keep_alive: bool) -> None:
        try:
            doc = jsonx.loads(raw)
        except jsonx.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            self._write(_response(b"400 Bad Request", b"application/json", b'{"error":{"message":"bad json"}}',
                                  keep_alive), close=not keep_alive)  # fmt: skip
            return
        self.stats.chat += 1
        model = str(doc.get("model") or "gpt-4o-mini")
        profile = self.replies.profile
        if doc.get("stream") is True:
            options = doc.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            events = self.replies.events(model, include_usage)
            if profile.latency_s == 0 and profile.chunk_delay_s == 0:
                self._write(_SSE_HEAD + b"".join(events), close=not keep_alive)
            else:
                paced = 2 + profile.chunks  # the role chunk, the content chunks and the finish chunk
                self.streaming = asyncio.ensure_future(self._paced_stream(events, paced, keep_alive))
            return
        reply = _response(b"200 OK", b"application/json", self.replies.completion(model), keep_alive)
        if profile.latency_s > 0:
            deadline = time.monotonic_ns() + round(profile.latency_s * 1e9)
            self.pacer.call_at(deadline, lambda: self._write(reply, close=not keep_alive))
        else:
            self._write(reply, close=not keep_alive)

    async def _paced_stream(self, events: list[bytes], paced: int, keep_alive: bool) -> None:
        """``events[:paced]`` (the role chunk, the content chunks, the finish chunk) are ``D`` ms apart."""
        profile = self.replies.profile
        # deadlines from the request's arrival, met off the loop's millisecond grid (bench/pacer.py): a stream's
        # length must not depend on when within a millisecond the request arrived
        start = time.monotonic_ns() + round(profile.latency_s * 1e9)
        delay = round(profile.chunk_delay_s * 1e9)
        if profile.latency_s > 0:
            await self.pacer.sleep_until(start)
        # the head travels with the role chunk, as a real provider's first flush does
        self._write(_SSE_HEAD + events[0])
        for i, event in enumerate(events[1:paced], 1):
            if delay > 0:
                await self.pacer.sleep_until(start + i * delay)
            if self.transport is None or self.transport.is_closing():
                return  # the client went away: stop like a provider whose stream was cancelled
            self._write(event)
        # what follows the finish chunk (the usage chunk when asked for, [DONE], the zero chunk) is known when
        # generation ends and leaves with it: asking for usage must not cost a token's delay
        self._write(b"".join(events[paced:]), close=not keep_alive)

    def _write(self, data: bytes, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if close:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int, profile: Profile, host: str = "127.0.0.1") -> None:
    """Serve on ``host:port`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    replies, stats, pacer = _Replies(profile), _Stats(), Pacer(loop)
    server = await loop.create_server(
        lambda: _Connection(replies, stats, pacer), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before the first byte")
    parser.add_argument("--chunks", type=int, default=10, help="content chunks per stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=1.0, help="delay between stream events")
    ns = parser.parse_args()
    profile = Profile(ns.latency_ms / 1000, max(0, ns.chunks), ns.chunk_delay_ms / 1000)
    uvloop.run(serve(ns.port, profile))


if __name__ == "__main__":
    main()
