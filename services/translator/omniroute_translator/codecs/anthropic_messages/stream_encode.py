"""Hub chunks → an Anthropic Messages SSE stream: always a valid, complete event sequence.

``message_start`` comes first (before any block, or before ``message_delta`` when nothing was said), blocks are
numbered from 0 in the order they open and each is closed (``content_block_stop``) before the next opens:

- ``reasoning_content`` → a ``thinking`` block (``thinking_delta``); a ``reasoning_details`` signature →
  ``signature_delta`` and the block closes (a later reasoning delta opens a new one); a redacted item → a whole
  ``redacted_thinking`` block;
- ``content`` (and ``refusal``) → a ``text`` block (``text_delta``);
- a tool call with an id → a ``tool_use`` block (``input: {}``); its argument pieces → ``input_json_delta``.
  Pieces for a tool call whose block was already closed (interleaved parallel calls, which OpenAI does not send
  in practice) still name that call's block index, which the official SDK accumulates by index.

Only choice 0 is encoded (Anthropic has one). ``finish`` closes the open block and writes ``message_delta``
(``stop_reason`` from the last ``finish_reason``, else ``end_turn``; the full usage, as Anthropic's final
``message_delta`` carries it) and ``message_stop``. A hub error chunk, or :meth:`error`, is an ``event: error``
and ends the stream: Anthropic's SDK raises at an error event, so nothing is written after it.
"""

from __future__ import annotations

from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_translator.codecs.anthropic_messages._usage import STOP_BY_FINISH, usage_from_hub
from omniroute_translator.codecs.anthropic_messages._util import obj
from omniroute_translator.codecs.anthropic_messages.errors import render_stream_error
from omniroute_translator.codecs.base import Context, HubChunk
from omniroute_translator.codecs.hub import error_from_chunk, is_error_chunk, usage_to_hub
from omniroute_translator.codecs.sse import format_event

__all__ = ["AnthropicStreamEncoder"]


def _event(kind: str, doc: dict[str, Any]) -> bytes:
    return format_event(jsonx.dumps({"type": kind, **doc}), kind)


class AnthropicStreamEncoder:
    """One per stream; see the module docstring."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._started = False
        self._open: str | None = None  # kind of the open block: "text", "thinking" or "tool_use"
        self._index = -1  # the open (or last opened) block's index
        self._tool_blocks: dict[int, int] = {}  # hub tool-call index -> block index
        self._stop = ""
        self._usage: dict[str, Any] | None = None
        self._failed = False

    def encode(self, chunk: HubChunk) -> bytes:
        if self._failed:
            return b""
        if is_error_chunk(chunk):
            return self.error(error_from_chunk(chunk))
        out = [self._start(chunk)]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out.append(self._delta(delta))
            finish = choice.get("finish_reason")
            if isinstance(finish, str):
                self._stop = STOP_BY_FINISH.get(finish, "end_turn")
                out.append(self._close())
        return b"".join(out)

    def finish(self, usage: common_pb2.Usage) -> bytes:
        if self._failed:
            return b""
        head = self._start({}) + self._close()
        hub_usage = usage_to_hub(usage) if usage.input_tokens or usage.output_tokens else self._usage
        delta = {"delta": {"stop_reason": self._stop or "end_turn", "stop_sequence": None}}
        return (
            head + _event("message_delta", {**delta, "usage": usage_from_hub(hub_usage)}) + _event("message_stop", {})
        )

    def error(self, err: common_pb2.Error) -> bytes:
        if self._failed:
            return b""
        self._failed = True
        return render_stream_error(err)

    def _start(self, chunk: HubChunk) -> bytes:
        if self._started:
            return b""
        self._started = True
        usage = usage_from_hub(chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None)
        message: dict[str, Any] = {
            "id": chunk.get("id") or f"msg_{self._ctx.request_id}",
            "type": "message",
            "role": "assistant",
            "model": self._ctx.model or chunk.get("model") or "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 0},
        }
        return _event("message_start", {"message": message})

    def _open_block(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = kind
        return out + _event("content_block_start", {"index": self._index, "content_block": {"type": kind, **block}})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"index": self._index})

    def _block_delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"index": index, "delta": delta})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            if self._open != "thinking":
                out.append(self._open_block("thinking", {"thinking": "", "signature": ""}))
            out.append(self._block_delta(self._index, {"type": "thinking_delta", "thinking": reasoning}))
        details = delta.get("reasoning_details")
        for detail in details if isinstance(details, list) else []:
            out.append(self._detail(detail))
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                if self._open != "text":
                    out.append(self._open_block("text", {"text": ""}))
                out.append(self._block_delta(self._index, {"type": "text_delta", "text": text}))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                out.append(self._tool_call(call))
        return b"".join(out)

    def _detail(self, detail: Any) -> bytes:
        if not isinstance(detail, dict):
            return b""
        if detail.get("type") == "redacted_thinking" and isinstance(detail.get("data"), str):
            return self._open_block("redacted_thinking", {"data": detail["data"]}) + self._close()
        signature = detail.get("signature")
        if detail.get("type") != "thinking" or not isinstance(signature, str) or not signature:
            return b""
        out = b"" if self._open == "thinking" else self._open_block("thinking", {"thinking": "", "signature": ""})
        return out + self._block_delta(self._index, {"type": "signature_delta", "signature": signature}) + self._close()

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        out = b""
        position = call.get("index", 0)
        function = obj(call.get("function"))
        if position not in self._tool_blocks or call.get("id"):
            block: dict[str, Any] = {
                "id": call.get("id") or f"toolu_{self._ctx.request_id}_{position}",
                "name": str(function.get("name") or ""),
                "input": {},
            }
            out += self._open_block("tool_use", block)
            self._tool_blocks[position] = self._index
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out += self._block_delta(self._tool_blocks[position], delta)
        return out
