"""Gemini ``streamGenerateContent?alt=sse`` streams ↔ hub chunks.

A Gemini stream is SSE ``data: {GenerateContentResponse}`` events (CRLF-separated) with **no terminal event**:
the last chunk carries ``finishReason`` (and the final ``usageMetadata``), then the connection closes. So the
decoder is ``complete`` once every candidate it has seen has a ``finishReason`` (or the prompt was blocked);
a stream that closes before that is incomplete. The encoder's ``finish`` writes no terminal event either.
"""

from __future__ import annotations

from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import Context, HubChunk, StreamEnd
from omniroute_translator.codecs.gemini._parts import assistant_message, obj
from omniroute_translator.codecs.gemini.errors import error_from_envelope, render_stream_error
from omniroute_translator.codecs.gemini.response import (
    FINISH_TO_GEMINI,
    TOOL_ID_PREFIX,
    block_refusal,
    finish_reason,
    message_parts,
    usage_from_gemini,
    usage_to_gemini,
)
from omniroute_translator.codecs.hub import error_chunk, error_from_chunk, is_error_chunk, usage_to_hub
from omniroute_translator.codecs.sse import SseEvent, SseParser

__all__ = ["GeminiStreamDecoder", "GeminiStreamEncoder"]


class GeminiStreamDecoder:
    """SSE bytes into hub chunks: one ``chat.completion.chunk`` per Gemini chunk (tool calls arrive whole, so a
    hub tool-call delta carries the complete arguments), then a usage-only chunk once the stream finishes (or at
    the end of input when it never did, so a cut stream is still metered). An ``{"error": …}`` event becomes a
    hub error chunk; a payload that is not JSON a 502 error chunk."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._done = False
        self._seen: set[int] = set()
        self._finished: set[int] = set()
        self._calls: dict[int, int] = {}
        self._usage: dict[str, Any] | None = None
        self._base: dict[str, Any] = {"object": "chat.completion.chunk"}

    @property
    def complete(self) -> bool:
        return self._done

    def feed(self, data: bytes) -> list[HubChunk]:
        if self._done:
            return []
        return self._events(self._sse.feed(data))

    def end(self) -> StreamEnd:
        if self._done:
            return StreamEnd([], True)
        chunks = self._events(self._sse.end())
        if not self._done and self._usage is not None:
            chunks.append({**self._base, "choices": [], "usage": self._usage})
        return StreamEnd(chunks, self._done)

    def _events(self, events: list[SseEvent]) -> list[HubChunk]:
        chunks: list[HubChunk] = []
        for event in events:
            if self._done:
                break
            try:
                doc = jsonx.loads(event.data)
            except jsonx.JSONDecodeError:
                chunks.append(error_chunk(hub_error(502, f"The upstream sent a malformed event: {event.data[:200]}")))
                continue
            if isinstance(doc, list) or (isinstance(doc, dict) and "error" in doc):
                chunks.append(error_chunk(error_from_envelope(doc)))
            elif isinstance(doc, dict):
                chunks += self._chunk(doc)
        return chunks

    def _chunk(self, doc: dict[str, Any]) -> list[HubChunk]:
        if isinstance(doc.get("responseId"), str):
            self._base["id"] = doc["responseId"]
        if isinstance(doc.get("modelVersion"), str):
            self._base["model"] = doc["modelVersion"]
        usage = usage_from_gemini(doc.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        candidates = doc.get("candidates")
        choices = [self._choice(c, i) for i, c in enumerate(candidates if isinstance(candidates, list) else [])]
        refusal = block_refusal(doc.get("promptFeedback"))
        if not choices and refusal is not None:
            delta = {"role": "assistant", "refusal": refusal}
            choices = [{"index": 0, "delta": delta, "finish_reason": "content_filter"}]
            self._seen.add(0)
            self._finished.add(0)
        out: list[HubChunk] = [{**self._base, "choices": choices}] if choices else []
        if self._seen and self._finished >= self._seen:
            self._done = True
            if self._usage is not None:
                out.append({**self._base, "choices": [], "usage": self._usage})
        return out

    def _choice(self, candidate: Any, position: int) -> dict[str, Any]:
        cand = candidate if isinstance(candidate, dict) else {}
        index = cand.get("index", position)
        index = index if isinstance(index, int) else position
        content = obj(cand.get("content"))
        message = assistant_message(content.get("parts") or [], self._calls.get(index, 0), TOOL_ID_PREFIX)
        delta: dict[str, Any] = {"role": "assistant"} if index not in self._seen else {}
        self._seen.add(index)
        for key in ("content", "reasoning_content", "reasoning_details"):
            if message.get(key):
                delta[key] = message[key]
        calls = message.get("tool_calls") or []
        if calls:
            first = self._calls.get(index, 0)
            delta["tool_calls"] = [{"index": first + k, **call} for k, call in enumerate(calls)]
            self._calls[index] = first + len(calls)
        reason = finish_reason(cand.get("finishReason"), self._calls.get(index, 0) > 0)
        if reason is not None:
            self._finished.add(index)
        return {"index": index, "delta": delta, "finish_reason": reason}


def _event(doc: dict[str, Any]) -> bytes:
    return b"data: " + jsonx.dumps(doc) + b"\r\n\r\n"


class GeminiStreamEncoder:
    """Hub chunks into Gemini SSE chunks that validate against google-genai's ``GenerateContentResponse``.

    - Tool-call argument deltas are collected per choice and sent as whole ``functionCall`` parts with the
      choice's finish chunk (Gemini has no partial arguments).
    - Gemini puts the final ``usageMetadata`` on the ``finishReason`` chunk while the hub sends usage after it,
      so a finish chunk is held until the usage chunk, the next content or ``finish`` arrives.
    - ``finish`` writes what is held (there is no terminal event); ``error`` writes the held chunk then a
      ``{"error": …}`` event.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._calls: dict[tuple[int, int], dict[str, Any]] = {}
        self._held: dict[str, Any] | None = None
        self._usage_sent = False

    def _frame(self, chunk: HubChunk) -> dict[str, Any]:
        return {
            "modelVersion": self._ctx.model or str(chunk.get("model") or ""),
            "responseId": str(chunk.get("id") or self._ctx.request_id),
        }

    def _release(self, usage: dict[str, Any] | None = None) -> bytes:
        held, self._held = self._held, None
        if held is None:
            return b""
        if usage is not None and "usageMetadata" not in held:
            held["usageMetadata"] = usage
        self._usage_sent = self._usage_sent or "usageMetadata" in held
        return _event(held)

    def encode(self, chunk: HubChunk) -> bytes:
        if is_error_chunk(chunk):
            return self.error(error_from_chunk(chunk))
        choices = chunk.get("choices")
        candidates = [c for c in (self._candidate(c, i) for i, c in enumerate(choices or [])) if c is not None]
        usage = usage_to_gemini(chunk.get("usage"))
        out = b""
        if candidates and self._held is not None:
            out += self._release()
        if not candidates:
            if usage is None:
                return out
            if self._held is not None:
                return out + self._release(usage)
            self._usage_sent = True
            return out + _event({"candidates": [], "usageMetadata": usage, **self._frame(chunk)})
        doc: dict[str, Any] = {"candidates": candidates}
        if usage is not None:
            doc["usageMetadata"] = usage
            self._usage_sent = True
        doc.update(self._frame(chunk))
        if any("finishReason" in c for c in candidates) and usage is None:
            self._held = doc
            return out
        return out + _event(doc)

    def _candidate(self, choice: Any, position: int) -> dict[str, Any] | None:
        if not isinstance(choice, dict):
            return None
        index = choice.get("index", position)
        delta = obj(choice.get("delta"))
        for call in delta.get("tool_calls") or []:
            self._collect(index, call)
        parts = message_parts({k: v for k, v in delta.items() if k != "tool_calls"})
        reason = choice.get("finish_reason")
        if reason is not None:
            parts += self._flush_calls(index)
        if not parts and reason is None:
            return None
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts or [{"text": ""}]}}
        if reason is not None:
            candidate["finishReason"] = FINISH_TO_GEMINI.get(str(reason), "OTHER")
        candidate["index"] = index
        return candidate

    def _collect(self, index: int, call: Any) -> None:
        if not isinstance(call, dict):
            return
        key = (index, int(call.get("index") or 0))
        slot = self._calls.setdefault(key, {"type": "function", "function": {"name": "", "arguments": ""}})
        function = obj(call.get("function"))
        if function.get("name"):
            slot["function"]["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            slot["function"]["arguments"] += function["arguments"]
        if isinstance(call.get("extra_content"), dict):
            slot["extra_content"] = call["extra_content"]

    def _flush_calls(self, index: int) -> list[dict[str, Any]]:
        keys = sorted(k for k in self._calls if k[0] == index)
        return message_parts({"tool_calls": [self._calls.pop(k) for k in keys]})

    def finish(self, usage: common_pb2.Usage) -> bytes:
        meta = usage_to_gemini(usage_to_hub(usage)) if usage.ByteSize() else None
        if self._held is not None:
            return self._release(meta)
        if meta is not None and not self._usage_sent:
            self._usage_sent = True
            return _event({"candidates": [], "usageMetadata": meta, **self._frame({})})
        return b""

    def error(self, err: common_pb2.Error) -> bytes:
        return self._release() + render_stream_error(err)
