"""OpenAI Chat Completions streams (SSE of ``chat.completion.chunk``) ↔ hub chunks."""

from __future__ import annotations

from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import Context, HubChunk, StreamEnd
from omniroute_translator.codecs.hub import error_chunk, error_from_chunk, is_error_chunk
from omniroute_translator.codecs.openai_chat.errors import error_from_envelope, render_stream_error
from omniroute_translator.codecs.openai_chat.response import normalize_usage
from omniroute_translator.codecs.sse import SseEvent, SseParser, format_event
from omniroute_translator.codecs.think import ThinkSplitter

__all__ = ["OpenAIChatStreamDecoder", "OpenAIChatStreamEncoder"]

_DONE = "[DONE]"


class OpenAIChatStreamDecoder:
    """SSE bytes into hub chunks.

    - ``data: [DONE]`` is the terminal event; anything after it is ignored.
    - An event that is an error envelope (``{"error": …}``, or ``event: error``) becomes a hub error chunk;
      a data payload that is not JSON becomes a 502 hub error chunk rather than being dropped.
    - ``usage: null`` (sent on every chunk under ``include_usage``) is removed; a usage object is normalized.
    - ``reasoning`` deltas are renamed ``reasoning_content``; a leading ``<think>`` block in ``content`` is moved
      to ``reasoning_content``, per choice, even when a tag is split across chunks. Text held back while a tag is
      incomplete is released with the choice's finish chunk, at ``[DONE]`` or at the end of input.
    """

    def __init__(self) -> None:
        self._sse = SseParser()
        self._done = False
        self._think: dict[int, ThinkSplitter] = {}
        self._last: dict[str, Any] = {}

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
        if not self._done:
            chunks += self._flush_all()
        return StreamEnd(chunks, self._done)

    def _events(self, events: list[SseEvent]) -> list[HubChunk]:
        chunks: list[HubChunk] = []
        for event in events:
            if self._done:
                break
            chunks += self._event(event)
        return chunks

    def _event(self, event: SseEvent) -> list[HubChunk]:
        data = event.data.strip()
        if data == _DONE:
            self._done = True
            return self._flush_all()
        if not data:
            return []
        try:
            doc = jsonx.loads(data)
        except jsonx.JSONDecodeError:
            doc = None
        if doc is None and "\n" in data:
            # some providers omit the blank line between events, so several data lines arrive as one event
            chunks: list[HubChunk] = []
            for line in data.split("\n"):
                if not self._done:
                    chunks += self._event(SseEvent(event.event, line))
            return chunks
        if not isinstance(doc, dict):
            return [error_chunk(hub_error(502, "The upstream stream sent an event that is not a JSON object."))]
        if event.event == "error" or (doc.get("error") is not None and not doc.get("choices")):
            return [error_chunk(error_from_envelope(doc))]
        chunk = self._chunk(doc)
        return [] if chunk is None else [chunk]

    def _chunk(self, doc: dict[str, Any]) -> HubChunk | None:
        self._last = {k: doc[k] for k in ("id", "object", "created", "model") if k in doc}
        chunk = dict(doc)
        usage = normalize_usage(doc.get("usage"))
        if usage is None:
            chunk.pop("usage", None)
        else:
            chunk["usage"] = usage
        choices = doc.get("choices")
        if not isinstance(choices, list):
            return chunk
        kept = [c for c in (self._choice(c) for c in choices) if c is not None]
        if choices and not kept and usage is None:
            return None  # every delta was held back (a partial <think> tag): nothing to say yet
        chunk["choices"] = kept
        return chunk

    def _choice(self, choice: Any) -> Any:
        if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
            return choice
        index = choice.get("index", 0)
        delta = dict(choice["delta"])
        if "reasoning_content" not in delta and isinstance(delta.get("reasoning"), str):
            delta["reasoning_content"] = delta.pop("reasoning")
        content = delta.get("content")
        thought, text, split = "", "", False
        if isinstance(content, str) and content:
            thought, text = self._splitter(index).feed(content)
            split = True
        if choice.get("finish_reason") is not None and index in self._think:
            more_thought, more_text = self._think.pop(index).flush()
            thought, text, split = thought + more_thought, text + more_text, True
        if split:
            _set_split(delta, thought, text)
            if not delta and choice.get("finish_reason") is None:
                return None
        return {**choice, "delta": delta}

    def _splitter(self, index: int) -> ThinkSplitter:
        if index not in self._think:
            self._think[index] = ThinkSplitter()
        return self._think[index]

    def _flush_all(self) -> list[HubChunk]:
        chunks: list[HubChunk] = []
        for index in sorted(self._think):
            thought, text = self._think[index].flush()
            delta: dict[str, Any] = {}
            _set_split(delta, thought, text)
            if delta:
                choice = {"index": index, "delta": delta, "finish_reason": None}
                chunks.append({**self._last, "choices": [choice]})
        self._think.clear()
        return chunks


def _set_split(delta: dict[str, Any], thought: str, text: str) -> None:
    delta.pop("content", None)
    if thought:
        delta["reasoning_content"] = (delta.get("reasoning_content") or "") + thought
    if text:
        delta["content"] = text


class OpenAIChatStreamEncoder:
    """Hub chunks into ``data: {chunk}`` events valid against OpenAI's ``CreateChatCompletionStreamResponse``.

    ``model`` is the context's; ``id`` / ``created`` are the chunk's, else ``chatcmpl-<request id>`` and the
    context's time. Every choice carries ``index``, ``delta`` and ``finish_reason``. ``finish`` is
    ``data: [DONE]``; usage travels as the hub's own usage chunk, not in the terminal event.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def encode(self, chunk: HubChunk) -> bytes:
        if is_error_chunk(chunk):
            return self.error(error_from_chunk(chunk))
        out: dict[str, Any] = {
            "id": chunk.get("id") or f"chatcmpl-{self._ctx.request_id}",
            "object": "chat.completion.chunk",
            "created": chunk.get("created") or self._ctx.created_unix,
            "model": self._ctx.model or chunk.get("model") or "",
        }
        choices = chunk.get("choices")
        out["choices"] = [_encode_choice(c, i) for i, c in enumerate(choices if isinstance(choices, list) else [])]
        for key, value in chunk.items():
            if key not in out and value is not None:
                out[key] = value
        return format_event(jsonx.dumps(out))

    def finish(self, usage: common_pb2.Usage) -> bytes:
        return format_event(_DONE.encode())

    def error(self, err: common_pb2.Error) -> bytes:
        return render_stream_error(err)


def _encode_choice(choice: Any, index: int) -> dict[str, Any]:
    src = choice if isinstance(choice, dict) else {}
    return {
        "index": src.get("index", index),
        "delta": src.get("delta") or {},
        "finish_reason": src.get("finish_reason"),
        **{k: v for k, v in src.items() if k not in ("index", "delta", "finish_reason")},
    }
