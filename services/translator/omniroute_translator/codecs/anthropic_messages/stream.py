"""Anthropic Messages SSE streams → hub chunks (the encoder is :mod:`.stream_encode`).

Event by event:

- ``message_start`` → a role chunk (``delta: {role: assistant, content: ""}``) with the message id and model;
  its usage is remembered;
- ``content_block_start``: ``tool_use`` → a tool-call delta with id, name and empty arguments (tool calls are
  numbered 0, 1, … in block order); ``redacted_thinking`` → ``reasoning_details: [{type: redacted_thinking,
  data}]``; text / thinking blocks that start with text → that text;
- ``content_block_delta``: ``text_delta`` → ``content``; ``thinking_delta`` → ``reasoning_content``;
  ``signature_delta`` → ``reasoning_details: [{type: thinking, signature}]`` (the signature closes its thinking
  block); ``input_json_delta`` → the tool call's ``arguments`` piece; ``citations_delta`` is dropped;
- ``message_delta`` → a finish chunk (``stop_reason`` mapped) and a usage chunk (``choices: []``) merging the
  start's usage with the delta's (the delta's counts win);
- ``message_stop`` is terminal (``complete``); ``ping`` and ``content_block_stop`` say nothing;
- ``event: error`` (or any ``{"type": "error"}`` payload) → a hub error chunk; a payload that is not a JSON
  object → a 502 error chunk.
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.anthropic_messages._usage import FINISH_BY_STOP, usage_to_hub
from omniroute_translator.codecs.anthropic_messages.errors import error_from_envelope
from omniroute_translator.codecs.base import HubChunk, StreamEnd
from omniroute_translator.codecs.hub import error_chunk
from omniroute_translator.codecs.sse import SseEvent, SseParser

__all__ = ["AnthropicStreamDecoder"]


class AnthropicStreamDecoder:
    """SSE bytes into hub chunks; bytes may be split anywhere. See the module docstring for the mapping."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._done = False
        self._head: dict[str, Any] = {"object": "chat.completion.chunk"}
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # content block index -> hub tool-call index

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
        return StreamEnd(self._events(self._sse.end()), self._done)

    def _events(self, events: list[SseEvent]) -> list[HubChunk]:
        chunks: list[HubChunk] = []
        for event in events:
            if self._done:
                break
            chunks += self._event(event)
        return chunks

    def _event(self, event: SseEvent) -> list[HubChunk]:
        try:
            doc = jsonx.loads(event.data)
        except jsonx.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            return [error_chunk(hub_error(502, "The upstream stream sent an event that is not a JSON object."))]
        kind = doc.get("type") or event.event
        if kind == "error" or event.event == "error":
            return [error_chunk(error_from_envelope(doc))]
        if kind == "message_start":
            return self._start(doc.get("message"))
        if kind == "content_block_start":
            return self._block_start(doc)
        if kind == "content_block_delta":
            return self._delta(doc)
        if kind == "message_delta":
            return self._message_delta(doc)
        if kind == "message_stop":
            self._done = True
        return []  # ping, content_block_stop and event types added later carry nothing for the hub

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> HubChunk:
        return {**self._head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _start(self, message: Any) -> list[HubChunk]:
        message = message if isinstance(message, dict) else {}
        for key in ("id", "model"):
            if isinstance(message.get(key), str):
                self._head[key] = message[key]
        if isinstance(message.get("usage"), dict):
            self._usage = dict(message["usage"])
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, doc: dict[str, Any]) -> list[HubChunk]:
        block = doc.get("content_block")
        index = doc.get("index")
        if not isinstance(block, dict):
            return []
        kind = block.get("type")
        if kind == "tool_use" and isinstance(index, int):
            self._tools[index] = len(self._tools)
            call = {
                "index": self._tools[index],
                "id": str(block.get("id") or ""),
                "type": "function",
                "function": {"name": str(block.get("name") or ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "redacted_thinking":
            detail = {"type": "redacted_thinking", "data": str(block.get("data") or "")}
            return [self._chunk({"reasoning_details": [detail]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        return []

    def _delta(self, doc: dict[str, Any]) -> list[HubChunk]:
        delta = doc.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "signature_delta" and isinstance(delta.get("signature"), str):
            return [self._chunk({"reasoning_details": [{"type": "thinking", "signature": delta["signature"]}]})]
        index = doc.get("index")
        if kind == "input_json_delta" and delta.get("partial_json") and index in self._tools:
            call = {"index": self._tools[index], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, doc: dict[str, Any]) -> list[HubChunk]:
        chunks: list[HubChunk] = []
        delta = doc.get("delta")
        stop = delta.get("stop_reason") if isinstance(delta, dict) else None
        if isinstance(stop, str):
            chunks.append(self._chunk({}, FINISH_BY_STOP.get(stop, "stop")))
        usage = doc.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            chunks.append({**self._head, "choices": [], "usage": usage_to_hub(self._usage)})
        return chunks
