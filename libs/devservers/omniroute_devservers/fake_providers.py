"""Fake Anthropic, Gemini and Ollama upstreams speaking their real wire formats.

Each answers by default with the same text and the same usage as :class:`FakeOpenAI` (11 input tokens of which
3 cached, 7 output), in its own vocabulary, so a test can check that every client sees the same result whatever
provider format sits behind the gateway. When a request offers tools, each fake calls the first one with
``{"city": "Paris"}``.
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_devservers.fake_upstream import TEXT, FakeUpstream, Recorded, Reply, tool_call_of

__all__ = ["FakeAnthropic", "FakeGemini", "FakeOllama"]


def _words(text: str) -> list[str]:
    return [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]


def _sse(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + jsonx.dumps(payload) + b"\n\n"


class FakeAnthropic(FakeUpstream):
    """``POST /v1/messages`` as Anthropic answers it (JSON or the full SSE event sequence)."""

    prefix = "/v1"
    usage = {"input_tokens": 8, "output_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}

    def __init__(self, text: str = TEXT) -> None:
        super().__init__(text)

    def message(self, model: str, tools: list[str]) -> dict[str, Any]:
        call = tool_call_of(tools)
        content: list[dict[str, Any]] = (
            [{"type": "tool_use", "id": "toolu_fake_1", "name": call[0], "input": call[1]}]
            if call
            else [{"type": "text", "text": self.text}]
        )
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if call else "end_turn",
            "stop_sequence": None,
            "usage": self.usage,
        }

    def events(self, model: str, tools: list[str]) -> list[bytes]:
        call = tool_call_of(tools)
        start = {**self.message(model, tools), "content": [], "stop_reason": None}
        start["usage"] = {**self.usage, "output_tokens": 1}
        frames = [_sse("message_start", {"type": "message_start", "message": start}), _sse("ping", {"type": "ping"})]
        if call:
            block = {"type": "tool_use", "id": "toolu_fake_1", "name": call[0], "input": {}}
            args = jsonx.dumps_str(call[1])
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in (args[:5], args[5:])]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": w} for w in _words(self.text)]
        frames.append(_sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}))
        frames += [_sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas]
        frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        delta = {"stop_reason": "tool_use" if call else "end_turn", "stop_sequence": None}
        frames.append(_sse("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 7}}))
        frames.append(_sse("message_stop", {"type": "message_stop"}))
        return frames

    def default(self, request: Recorded) -> Reply:
        doc = request.json
        tools = [t["name"] for t in doc.get("tools") or []]
        model = str(doc.get("model", ""))
        if doc.get("stream"):
            return Reply(frames=self.events(model, tools))
        return Reply(json=self.message(model, tools))


class FakeGemini(FakeUpstream):
    """``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``."""

    prefix = "/v1beta"
    usage = {"promptTokenCount": 11, "cachedContentTokenCount": 3, "candidatesTokenCount": 7, "totalTokenCount": 18}

    def __init__(self, text: str = TEXT) -> None:
        super().__init__(text)

    def response(self, model: str, parts: list[dict[str, Any]], finish: str | None, usage: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "resp-fake"}
        if usage:
            out["usageMetadata"] = self.usage
        return out

    def default(self, request: Recorded) -> Reply:
        doc = request.json
        path = request.path.split("?")[0]
        model = path.rsplit("/", 1)[-1].split(":")[0]
        tools = [f["name"] for t in doc.get("tools") or [] for f in t.get("functionDeclarations") or []]
        call = tool_call_of(tools)
        if path.endswith(":streamGenerateContent"):
            parts: list[list[dict[str, Any]]]
            if call:
                parts = [[{"functionCall": {"name": call[0], "args": call[1]}}]]
            else:
                parts = [[{"text": w}] for w in _words(self.text)]
            frames = [
                b"data: "
                + jsonx.dumps(self.response(model, p, "STOP" if i == len(parts) - 1 else None, True))
                + b"\r\n\r\n"
                for i, p in enumerate(parts)
            ]
            return Reply(frames=frames)
        whole = [{"functionCall": {"name": call[0], "args": call[1]}}] if call else [{"text": self.text}]
        return Reply(json=self.response(model, whole, "STOP", True))


class FakeOllama(FakeUpstream):
    """``POST /api/chat`` as Ollama answers it (JSON, or NDJSON ending with ``done: true``; streams by default)."""

    prefix = ""

    def __init__(self, text: str = TEXT) -> None:
        super().__init__(text)

    def final(self, model: str, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": "2026-01-01T00:00:00Z",
            "message": message,
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_000_000,
            "load_duration": 1000,
            "prompt_eval_count": 11,
            "prompt_eval_duration": 1000,
            "eval_count": 7,
            "eval_duration": 1000,
        }

    def default(self, request: Recorded) -> Reply:
        doc = request.json
        model = str(doc.get("model", ""))
        tools = [t["function"]["name"] for t in doc.get("tools") or []]
        call = tool_call_of(tools)
        message: dict[str, Any] = {"role": "assistant", "content": "" if call else self.text}
        if call:
            message["tool_calls"] = [{"function": {"name": call[0], "arguments": call[1]}}]
        if not doc.get("stream", True):
            return Reply(json=self.final(model, message))
        lines = []
        if not call:
            for w in _words(self.text):
                partial = {"model": model, "created_at": "2026-01-01T00:00:00Z", "done": False}
                lines.append(jsonx.dumps({**partial, "message": {"role": "assistant", "content": w}}) + b"\n")
            message = {"role": "assistant", "content": ""}
        lines.append(jsonx.dumps(self.final(model, message)) + b"\n")
        return Reply(frames=lines, content_type="application/x-ndjson")
