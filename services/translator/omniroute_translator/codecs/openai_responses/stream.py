"""OpenAI Responses SSE streams (a provider's) → hub chunks.

- ``response.created`` → the head (id, model, created) and a role chunk (``role: assistant``, ``content: ""``);
- ``response.output_text.delta`` → ``content``; ``response.refusal.delta`` → ``refusal``;
  ``response.reasoning_summary_text.delta`` and ``response.reasoning_text.delta`` → ``reasoning_content``
  (a new summary part after the first is preceded by a blank line, as in non-streamed decoding);
- ``response.output_item.added`` of a ``function_call`` → a tool-call delta with id (``call_id``), name and empty
  arguments (tool calls numbered 0, 1, … in output order); ``response.function_call_arguments.delta`` → its
  argument piece; when a call's arguments never came as deltas, ``.done`` / ``output_item.done`` supply them whole;
- ``response.completed`` / ``response.incomplete`` are terminal (``complete``): a finish chunk (status mapped as
  in responses) and a usage chunk (``choices: []``);
- ``event: error`` (``type: "error"``) → a hub error chunk; ``response.failed`` → a hub error chunk (unless an
  error event already reported it) and ends decoding (later input is ignored) **without** ``complete``: a failed
  response is not a finished one, so the caller meters it as a failure (as an Anthropic stream that ends in an
  error event); a payload that is not a JSON object → a 502 error chunk;
- everything else (``response.in_progress``, ``content_part.*``, ``*.done`` text events, …) says nothing new.
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import HubChunk, StreamEnd
from omniroute_translator.codecs.hub import error_chunk
from omniroute_translator.codecs.openai_responses._common import finish_reason, obj, text, usage_to_hub
from omniroute_translator.codecs.openai_responses.errors import error_from_event
from omniroute_translator.codecs.sse import SseEvent, SseParser

__all__ = ["ResponsesStreamDecoder"]

_TERMINAL = frozenset({"response.completed", "response.incomplete"})
_REASONING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})


class ResponsesStreamDecoder:
    """SSE bytes into hub chunks; bytes may be split anywhere. See the module docstring for the mapping."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._done = False
        self._stopped = False  # response.failed was seen: nothing more to read, yet not complete
        self._failed = False
        self._head: dict[str, Any] = {"object": "chat.completion.chunk"}
        self._calls: dict[str, int] = {}  # function_call item id -> hub tool-call index
        self._with_args: set[str] = set()  # calls whose arguments were already sent
        self._reasoning_parts: set[tuple[str, int]] = set()  # (item id, summary index) seen
        self._said_reasoning = False

    @property
    def complete(self) -> bool:
        return self._done

    def feed(self, data: bytes) -> list[HubChunk]:
        if self._done or self._stopped:
            return []
        return self._events(self._sse.feed(data))

    def end(self) -> StreamEnd:
        if self._done or self._stopped:
            return StreamEnd([], self._done)
        return StreamEnd(self._events(self._sse.end()), self._done)

    def _events(self, events: list[SseEvent]) -> list[HubChunk]:
        chunks: list[HubChunk] = []
        for event in events:
            if self._done or self._stopped:
                break
            chunks += self._event(event)
        return chunks

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> HubChunk:
        return {**self._head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _event(self, event: SseEvent) -> list[HubChunk]:
        try:
            doc = jsonx.loads(event.data)
        except jsonx.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            return [error_chunk(hub_error(502, "The upstream stream sent an event that is not a JSON object."))]
        kind = text(doc.get("type")) or event.event
        if kind == "error" or event.event == "error":
            self._failed = True
            return [error_chunk(error_from_event(doc))]
        if kind == "response.failed":
            self._stopped = True
            return [] if self._failed else [error_chunk(error_from_event(doc))]
        if kind in _TERMINAL:
            self._done = True
            return self._terminal(doc)
        if kind == "response.created":
            return self._created(obj(doc.get("response")))
        if kind == "response.output_text.delta" and text(doc.get("delta")):
            return [self._chunk({"content": doc["delta"]})]
        if kind == "response.refusal.delta" and text(doc.get("delta")):
            return [self._chunk({"refusal": doc["delta"]})]
        if kind in _REASONING_DELTAS and text(doc.get("delta")):
            return [self._chunk({"reasoning_content": self._reasoning_prefix(doc) + doc["delta"]})]
        if kind == "response.output_item.added":
            return self._item_added(obj(doc.get("item")))
        if kind == "response.function_call_arguments.delta" and text(doc.get("delta")):
            return self._arguments(text(doc.get("item_id")), doc["delta"])
        if kind == "response.function_call_arguments.done":
            return self._arguments_whole(text(doc.get("item_id")), text(doc.get("arguments")))
        if kind == "response.output_item.done" and obj(doc.get("item")).get("type") == "function_call":
            item = obj(doc.get("item"))
            return self._item_added(item) + self._arguments_whole(text(item.get("id")), text(item.get("arguments")))
        return []

    def _created(self, response: dict[str, Any]) -> list[HubChunk]:
        if isinstance(response.get("id"), str):
            self._head["id"] = response["id"]
        if isinstance(response.get("model"), str):
            self._head["model"] = response["model"]
        if isinstance(response.get("created_at"), int | float):
            self._head["created"] = int(response["created_at"])
        return [self._chunk({"role": "assistant", "content": ""})]

    def _reasoning_prefix(self, doc: dict[str, Any]) -> str:
        """A blank line between reasoning parts (a new summary part, or a new reasoning item)."""
        key = (text(doc.get("item_id")), doc.get("summary_index", doc.get("content_index", 0)))
        if key in self._reasoning_parts:
            return ""
        self._reasoning_parts.add(key)
        first, self._said_reasoning = not self._said_reasoning, True
        return "" if first else "\n\n"

    def _item_added(self, item: dict[str, Any]) -> list[HubChunk]:
        item_id = text(item.get("id")) or text(item.get("call_id"))
        if item.get("type") != "function_call" or item_id in self._calls:
            return []
        self._calls[item_id] = len(self._calls)
        call = {
            "index": self._calls[item_id],
            "id": text(item.get("call_id")) or item_id,
            "type": "function",
            "function": {"name": text(item.get("name")), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _arguments(self, item_id: str, piece: str) -> list[HubChunk]:
        if item_id not in self._calls:
            return []
        self._with_args.add(item_id)
        return [self._chunk({"tool_calls": [{"index": self._calls[item_id], "function": {"arguments": piece}}]})]

    def _arguments_whole(self, item_id: str, arguments: str) -> list[HubChunk]:
        if item_id in self._with_args or not arguments:
            return []
        return self._arguments(item_id, arguments)

    def _terminal(self, doc: dict[str, Any]) -> list[HubChunk]:
        response = obj(doc.get("response"))
        kind = text(doc.get("type"))
        finish = finish_reason(
            response.get("status") or kind.removeprefix("response."),
            response.get("incomplete_details"),
            bool(self._calls),
        )
        chunks = [self._chunk({}, finish)]
        if isinstance(response.get("usage"), dict):
            chunks.append({**self._head, "choices": [], "usage": usage_to_hub(response["usage"])})
        return chunks
