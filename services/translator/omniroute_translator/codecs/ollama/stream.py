"""Ollama NDJSON streams (``application/x-ndjson``: one JSON object a line) ↔ hub chunks.

The last object has ``done: true`` with ``done_reason`` and the counts; a stream without it is incomplete.
"""

from __future__ import annotations

from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import Context, HubChunk, StreamEnd
from omniroute_translator.codecs.hub import error_chunk, error_from_chunk, is_error_chunk, usage_to_hub
from omniroute_translator.codecs.ollama._messages import hub_tool_calls, obj
from omniroute_translator.codecs.ollama.errors import error_from_body, render_stream_error
from omniroute_translator.codecs.ollama.response import (
    created_at,
    done_reason,
    finish_reason,
    native_message,
    usage_from_ollama,
    usage_to_ollama,
)

__all__ = ["OllamaStreamDecoder", "OllamaStreamEncoder"]


class OllamaStreamDecoder:
    """NDJSON bytes into hub chunks: each object a delta (role on the first; tool calls arrive whole); the
    ``done`` object a finish chunk then a usage chunk, and the stream is complete. ``{"error": …}`` lines become
    hub error chunks; a line that is not JSON a 502 error chunk. Blank lines and CRLF are tolerated."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._done = False
        self._started = False
        self._calls = 0
        self._base: dict[str, Any] = {"object": "chat.completion.chunk"}

    @property
    def complete(self) -> bool:
        return self._done

    def feed(self, data: bytes) -> list[HubChunk]:
        if self._done:
            return []
        self._buf += data
        *lines, rest = self._buf.split(b"\n")
        self._buf = bytearray(rest)
        return self._lines(lines)

    def end(self) -> StreamEnd:
        if self._done:
            return StreamEnd([], True)
        chunks = self._lines([bytes(self._buf)])
        self._buf.clear()
        return StreamEnd(chunks, self._done)

    def _lines(self, lines: list[bytes] | list[bytearray]) -> list[HubChunk]:
        chunks: list[HubChunk] = []
        for raw in lines:
            line = bytes(raw).strip()
            if self._done or not line:
                continue
            try:
                doc = jsonx.loads(line)
            except jsonx.JSONDecodeError:
                text = line[:200].decode("utf-8", errors="replace")
                chunks.append(error_chunk(hub_error(502, f"The upstream sent a malformed line: {text}")))
                continue
            if not isinstance(doc, dict) or "error" in doc:
                chunks.append(error_chunk(error_from_body(doc)))
            else:
                chunks += self._chunk(doc)
        return chunks

    def _chunk(self, doc: dict[str, Any]) -> list[HubChunk]:
        if isinstance(doc.get("model"), str):
            self._base["model"] = doc["model"]
        native = obj(doc.get("message"))
        delta: dict[str, Any] = {} if self._started else {"role": "assistant"}
        self._started = True
        if isinstance(native.get("content"), str) and native["content"]:
            delta["content"] = native["content"]
        if isinstance(native.get("thinking"), str) and native["thinking"]:
            delta["reasoning_content"] = native["thinking"]
        calls = hub_tool_calls(native.get("tool_calls"), self._calls)
        if calls:
            delta["tool_calls"] = [{"index": self._calls + k, **call} for k, call in enumerate(calls)]
            self._calls += len(calls)
        if doc.get("done") is not True:
            return [{**self._base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}] if delta else []
        self._done = True
        reason = finish_reason(doc.get("done_reason"), self._calls > 0)
        out: list[HubChunk] = [{**self._base, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}]
        usage = usage_from_ollama(doc)
        if usage is not None:
            out.append({**self._base, "choices": [], "usage": usage})
        return out


class OllamaStreamEncoder:
    """Hub chunks into NDJSON lines that validate against the ollama SDK's ``ChatResponse``.

    Tool-call argument deltas are collected and sent whole (Ollama has no partial arguments) on a line of their
    own when the choice finishes. The ``done: true`` line (``done_reason``, counts) is written by ``finish``,
    once the hub's usage is known, so an incomplete stream ends without it, as Ollama's would.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._calls: dict[int, dict[str, Any]] = {}
        self._reason: Any = None

    def _line(self, message: dict[str, Any], **extra: Any) -> bytes:
        doc = {"model": self._ctx.model, "created_at": created_at(self._ctx.created_unix), "message": message}
        return jsonx.dumps({**doc, "done": False, **extra}) + b"\n"

    def encode(self, chunk: HubChunk) -> bytes:
        if is_error_chunk(chunk):
            return self.error(error_from_chunk(chunk))
        out = b""
        for raw in chunk.get("choices") or []:
            choice = obj(raw)
            if choice.get("index", 0) != 0:
                continue  # Ollama has one choice; n > 1 is dropped (README table)
            delta = obj(choice.get("delta"))
            for call in delta.get("tool_calls") or []:
                self._collect(obj(call))
            message = native_message({k: v for k, v in delta.items() if k != "tool_calls"})
            if message["content"] or "thinking" in message:
                out += self._line(message)
            if choice.get("finish_reason") is not None:
                self._reason = choice["finish_reason"]
                if self._calls:
                    calls = [self._calls[k] for k in sorted(self._calls)]
                    self._calls.clear()
                    out += self._line(native_message({"tool_calls": calls}))
        return out

    def _collect(self, call: dict[str, Any]) -> None:
        slot = self._calls.setdefault(int(call.get("index") or 0), {"function": {"name": "", "arguments": ""}})
        function = obj(call.get("function"))
        if function.get("name"):
            slot["function"]["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            slot["function"]["arguments"] += function["arguments"]

    def finish(self, usage: common_pb2.Usage) -> bytes:
        counts = usage_to_ollama(usage_to_hub(usage)) if usage.ByteSize() else {}
        final = {"done": True, "done_reason": done_reason(self._reason), **counts}
        return self._line({"role": "assistant", "content": ""}, **final)

    def error(self, err: common_pb2.Error) -> bytes:
        return render_stream_error(err)
