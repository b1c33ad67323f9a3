"""Hub chunks → an OpenAI Responses SSE stream: always a valid, complete event sequence.

Every event is ``event: <type>`` + ``data: {…, "sequence_number": n}`` with n = 0, 1, … . The stream opens with
``response.created`` and ``response.in_progress`` (status ``in_progress``, no output). Output items are opened
one at a time, numbered by ``output_index`` from 0, and closed before the next opens:

- ``reasoning_content`` → a ``reasoning`` item: ``output_item.added``, ``reasoning_summary_part.added``,
  ``reasoning_summary_text.delta``…; closed by ``reasoning_summary_text.done``, ``reasoning_summary_part.done``,
  ``output_item.done``;
- ``content`` → a ``message`` item with an ``output_text`` part (``content_part.added``,
  ``output_text.delta``…, ``output_text.done``, ``content_part.done``); ``refusal`` → a ``refusal`` part of the
  same item (``refusal.delta``…, ``refusal.done``); ``output_item.done`` carries the whole item;
- a tool call with an id → a ``function_call`` item (``output_item.added`` with ``call_id`` and ``name``);
  argument pieces → ``function_call_arguments.delta``; closed by ``function_call_arguments.done`` and
  ``output_item.done``. Pieces for a call whose item was already closed (interleaved parallel calls, which
  OpenAI does not send) still name that call's item, which the official SDK accumulates by ``output_index``.

Item ids derive from the request id (``rs_``/``msg_``/``fc_<request id>_<output index>``), the response id is
``resp_<request id>``. Only choice 0 is encoded. ``finish`` closes the open item and writes ``response.completed``
(or ``response.incomplete`` for ``length`` / ``content_filter``) with the full response: every output item and
the usage. A hub error chunk, or :meth:`error`, is an ``error`` event followed by ``response.failed``, and ends the
stream (nothing is written after it).
"""

from __future__ import annotations

from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_translator.codecs.base import Context, HubChunk
from omniroute_translator.codecs.hub import error_from_chunk, is_error_chunk, usage_to_hub
from omniroute_translator.codecs.openai_responses._common import INCOMPLETE_BY_FINISH, obj, text, usage_from_hub
from omniroute_translator.codecs.openai_responses.errors import error_event, response_error
from omniroute_translator.codecs.openai_responses.response import (
    function_item,
    message_item,
    reasoning_item,
    response_object,
)
from omniroute_translator.codecs.sse import format_event

__all__ = ["ResponsesStreamEncoder"]


class _Item:
    """The open output item: its kind, index, id and what it has said so far."""

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind  # "reasoning", "message" or "function_call"
        self.index = index
        self.id = item_id
        self.text = ""  # reasoning summary, or the message's output_text
        self.refusal = ""
        self.part = ""  # the message's open part: "output_text", "refusal" or ""
        self.parts = 0  # content parts opened so far (the open one is parts - 1)
        self.call_id = ""
        self.name = ""


class ResponsesStreamEncoder:
    """One per stream; see the module docstring."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._prefix = ctx.request_id or "0"
        self._seq = 0
        self._started = False
        self._failed = False
        self._head: dict[str, Any] = {}
        self._open: _Item | None = None
        self._done: list[dict[str, Any]] = []  # closed output items, in output order
        self._calls: dict[int, _Item] = {}  # hub tool-call index -> its item
        self._finish = ""
        self._usage: dict[str, Any] | None = None

    def _event(self, kind: str, doc: dict[str, Any]) -> bytes:
        payload = {"type": kind, **doc, "sequence_number": self._seq}
        self._seq += 1
        return format_event(jsonx.dumps(payload), kind)

    def _response(self, status: str) -> dict[str, Any]:
        response = response_object(
            self._ctx, self._head.get("id"), self._head.get("created"), status, list(self._done), self._finish
        )
        response["model"] = self._ctx.model or text(self._head.get("model"))
        return response

    def encode(self, chunk: HubChunk) -> bytes:
        if self._failed:
            return b""
        if is_error_chunk(chunk):
            return self.error(error_from_chunk(chunk))
        if not self._started:
            self._head = {k: chunk[k] for k in ("id", "created", "model") if chunk.get(k)}
        out = [self._start()]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        for choice in (obj(c) for c in (choices if isinstance(choices, list) else [])):
            if choice.get("index", 0) != 0:
                continue
            out.append(self._delta(obj(choice.get("delta"))))
            if isinstance(choice.get("finish_reason"), str):
                self._finish = choice["finish_reason"]
                out.append(self._close())
        return b"".join(out)

    def finish(self, usage: common_pb2.Usage) -> bytes:
        if self._failed:
            return b""
        out = self._start() + self._close()
        status = "incomplete" if self._finish in INCOMPLETE_BY_FINISH else "completed"
        response = self._response(status)
        hub_usage = usage_to_hub(usage) if usage.input_tokens or usage.output_tokens else self._usage
        response["usage"] = usage_from_hub(hub_usage)
        return out + self._event(f"response.{status}", {"response": response})

    def error(self, err: common_pb2.Error) -> bytes:
        if self._failed:
            return b""
        self._failed = True
        out = self._event("error", {k: v for k, v in error_event(err, 0).items() if k != "sequence_number"})
        response = self._response("failed")
        response["error"] = response_error(err)
        return out + self._event("response.failed", {"response": response})

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        response = self._response("in_progress")
        return self._event("response.created", {"response": response}) + self._event(
            "response.in_progress", {"response": response}
        )

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            out.append(self._reasoning(reasoning))
        for kind in ("content", "refusal"):
            piece = delta.get(kind)
            if isinstance(piece, str) and piece:
                out.append(self._message(kind, piece))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                out.append(self._tool_call(call))
        return b"".join(out)

    def _open_item(self, kind: str, prefix: str, item: dict[str, Any], call_id: str = "") -> tuple[bytes, _Item]:
        out = self._close()
        index = len(self._done)
        opened = _Item(kind, index, f"{prefix}_{self._prefix}_{index}")
        self._open = opened
        if kind == "function_call":
            opened.call_id, opened.name = call_id or opened.id, text(item.get("name"))
            item = {**item, "call_id": opened.call_id}
        added = self._event("response.output_item.added", {"output_index": index, "item": {**item, "id": opened.id}})
        return out + added, opened

    def _where(self, item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index}

    def _reasoning(self, piece: str) -> bytes:
        out, item = b"", self._open
        if item is None or item.kind != "reasoning":
            out, item = self._open_item("reasoning", "rs", {"type": "reasoning", "summary": []})
            part = {**self._where(item), "summary_index": 0, "part": {"type": "summary_text", "text": ""}}
            out += self._event("response.reasoning_summary_part.added", part)
        item.text += piece
        delta = {**self._where(item), "summary_index": 0, "delta": piece}
        return out + self._event("response.reasoning_summary_text.delta", delta)

    def _message(self, kind: str, piece: str) -> bytes:
        out, item = b"", self._open
        if item is None or item.kind != "message":
            empty = {"type": "message", "role": "assistant", "status": "in_progress", "content": []}
            out, item = self._open_item("message", "msg", empty)
        part = "output_text" if kind == "content" else "refusal"
        if item.part != part:
            out += self._close_part(item)
            item.part, item.parts = part, item.parts + 1
            blank = _part(part, "")
            out += self._event("response.content_part.added", {**self._where(item), **self._index(item), "part": blank})
        if part == "output_text":
            item.text += piece
            delta = {**self._where(item), **self._index(item), "delta": piece, "logprobs": []}
            return out + self._event("response.output_text.delta", delta)
        item.refusal += piece
        return out + self._event("response.refusal.delta", {**self._where(item), **self._index(item), "delta": piece})

    def _index(self, item: _Item) -> dict[str, int]:
        return {"content_index": item.parts - 1}

    def _close_part(self, item: _Item) -> bytes:
        if not item.part:
            return b""
        where = {**self._where(item), **self._index(item)}
        if item.part == "output_text":
            out = self._event("response.output_text.done", {**where, "text": item.text, "logprobs": []})
            full = _part("output_text", item.text)
        else:
            out = self._event("response.refusal.done", {**where, "refusal": item.refusal})
            full = _part("refusal", item.refusal)
        item.part = ""
        return out + self._event("response.content_part.done", {**where, "part": full})

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        out = b""
        position = call.get("index", 0)
        function = obj(call.get("function"))
        item = self._calls.get(position)
        if item is None or call.get("id"):
            head = {
                "type": "function_call",
                "name": text(function.get("name")),
                "arguments": "",
                "status": "in_progress",
            }
            out, item = self._open_item("function_call", "fc", head, text(call.get("id")))
            self._calls[position] = item
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text += arguments
            delta = {**self._where(item), "delta": arguments}
            out += self._event("response.function_call_arguments.delta", delta)
        return out

    def _close(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        status = "incomplete" if self._finish in INCOMPLETE_BY_FINISH else "completed"
        where = self._where(item)
        if item.kind == "reasoning":
            done = reasoning_item(item.id, item.text)
            out = self._event("response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": item.text})
            part = {**where, "summary_index": 0, "part": {"type": "summary_text", "text": item.text}}
            out += self._event("response.reasoning_summary_part.done", part)
        elif item.kind == "message":
            out = self._close_part(item)
            done = message_item(item.id, item.text, item.refusal, status)
        else:
            done = function_item(item.id, item.call_id, item.name, item.text, "completed")
            args = {**where, "name": item.name, "arguments": item.text}
            out = self._event("response.function_call_arguments.done", args)
        self._done.append(done)
        return out + self._event("response.output_item.done", {"output_index": item.index, "item": done})


def _part(kind: str, value: str) -> dict[str, Any]:
    if kind == "refusal":
        return {"type": "refusal", "refusal": value}
    return {"type": "output_text", "text": value, "annotations": [], "logprobs": []}
