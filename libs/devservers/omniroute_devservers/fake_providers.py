"""Fake Anthropic, Gemini, Ollama and OpenAI Responses upstreams speaking their real wire formats.

Each answers by default with the same text and the same usage as :class:`FakeOpenAI` (11 input tokens of which
3 cached, 7 output), in its own vocabulary, so a test can check that every client sees the same result whatever
provider format sits behind the gateway. When a request offers tools, each fake calls the first one with
``{"city": "Paris"}``. When a request asks for reasoning, each returns :data:`REASONING` the way its provider does:
an Anthropic thinking block signed with :data:`SIGNATURE` (streamed as ``thinking_delta`` + ``signature_delta``),
Gemini ``thought`` parts, Ollama ``message.thinking``, a Responses ``reasoning`` item with a summary. Model-list
requests are answered by :mod:`omniroute_devservers.fake_models`.
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_devservers.fake_models import anthropic_models, gemini_models, ollama_tags
from omniroute_devservers.fake_upstream import (
    REASONING,
    SIGNATURE,
    TEXT,
    FakeUpstream,
    Recorded,
    Reply,
    tool_call_of,
    words,
)

__all__ = ["FakeAnthropic", "FakeGemini", "FakeOllama", "FakeResponses"]


def _sse(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + jsonx.dumps(payload) + b"\n\n"


class FakeAnthropic(FakeUpstream):
    """``POST /v1/messages`` as Anthropic answers it (JSON or the full SSE event sequence). ``thinking`` enabled (or
    adaptive) puts a signed thinking block first."""

    prefix = "/v1"
    usage = {"input_tokens": 8, "output_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}

    def __init__(self, text: str = TEXT) -> None:
        super().__init__(text)

    def message(self, model: str, tools: list[str], thinking: bool = False) -> dict[str, Any]:
        call = tool_call_of(tools)
        content: list[dict[str, Any]] = (
            [{"type": "tool_use", "id": "toolu_fake_1", "name": call[0], "input": call[1]}]
            if call
            else [{"type": "text", "text": self.text}]
        )
        if thinking:
            content.insert(0, {"type": "thinking", "thinking": REASONING, "signature": SIGNATURE})
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

    def events(self, model: str, tools: list[str], thinking: bool = False) -> list[bytes]:
        call = tool_call_of(tools)
        start = {**self.message(model, tools), "content": [], "stop_reason": None}
        start["usage"] = {**self.usage, "output_tokens": 1}
        frames = [_sse("message_start", {"type": "message_start", "message": start}), _sse("ping", {"type": "ping"})]
        blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        if thinking:
            deltas = [{"type": "thinking_delta", "thinking": w} for w in words(REASONING)]
            deltas.append({"type": "signature_delta", "signature": SIGNATURE})
            blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
        if call:
            args = jsonx.dumps_str(call[1])
            block = {"type": "tool_use", "id": "toolu_fake_1", "name": call[0], "input": {}}
            blocks.append((block, [{"type": "input_json_delta", "partial_json": p} for p in (args[:5], args[5:])]))
        else:
            blocks.append(({"type": "text", "text": ""}, [{"type": "text_delta", "text": w} for w in words(self.text)]))
        for index, (block, deltas) in enumerate(blocks):
            start_block = {"type": "content_block_start", "index": index, "content_block": block}
            frames.append(_sse("content_block_start", start_block))
            for d in deltas:
                frames.append(_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}))
            frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        delta = {"stop_reason": "tool_use" if call else "end_turn", "stop_sequence": None}
        frames.append(_sse("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 7}}))
        frames.append(_sse("message_stop", {"type": "message_stop"}))
        return frames

    def default(self, request: Recorded) -> Reply:
        if request.method == "GET" and request.path.split("?")[0] == "/v1/models":
            return anthropic_models(request)
        doc = request.json
        tools = [t["name"] for t in doc.get("tools") or []]
        model = str(doc.get("model", ""))
        thinking = (doc.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        if doc.get("stream"):
            return Reply(frames=self.events(model, tools, thinking))
        return Reply(json=self.message(model, tools, thinking))


class FakeGemini(FakeUpstream):
    """``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``. With
    ``thinkingConfig.includeThoughts`` the answer starts with ``thought: true`` parts and a function call carries a
    ``thoughtSignature`` (as Gemini signs calls made while thinking); 2 of the 7 output tokens are then thoughts."""

    prefix = "/v1beta"
    usage = {"promptTokenCount": 11, "cachedContentTokenCount": 3, "candidatesTokenCount": 7, "totalTokenCount": 18}
    thinking_usage = {**usage, "candidatesTokenCount": 5, "thoughtsTokenCount": 2}

    def __init__(self, text: str = TEXT) -> None:
        super().__init__(text)

    def response(
        self, model: str, parts: list[dict[str, Any]], finish: str | None, usage: bool, thinking: bool = False
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "resp-fake"}
        if usage:
            out["usageMetadata"] = self.thinking_usage if thinking else self.usage
        return out

    def default(self, request: Recorded) -> Reply:
        if request.method == "GET" and request.path.split("?")[0] == "/v1beta/models":
            return gemini_models(request)
        doc = request.json
        path = request.path.split("?")[0]
        model = path.rsplit("/", 1)[-1].split(":")[0]
        tools = [f["name"] for t in doc.get("tools") or [] for f in t.get("functionDeclarations") or []]
        config = (doc.get("generationConfig") or {}).get("thinkingConfig") or {}
        # proto JSON: Gemini takes the snake_case field name too (the google-genai SDK writes this one that way)
        thinking = bool(config.get("includeThoughts", config.get("include_thoughts")))
        call = tool_call_of(tools)
        call_part: dict[str, Any] = {}
        if call:
            call_part = {"functionCall": {"name": call[0], "args": call[1]}}
            if thinking:
                call_part["thoughtSignature"] = SIGNATURE
        if path.endswith(":streamGenerateContent"):
            parts: list[list[dict[str, Any]]] = []
            if thinking:
                parts += [[{"text": w, "thought": True}] for w in words(REASONING)]
            parts += [[call_part]] if call else [[{"text": w}] for w in words(self.text)]
            frames = [
                b"data: "
                + jsonx.dumps(self.response(model, p, "STOP" if i == len(parts) - 1 else None, True, thinking))
                + b"\r\n\r\n"
                for i, p in enumerate(parts)
            ]
            return Reply(frames=frames)
        whole: list[dict[str, Any]] = [call_part] if call else [{"text": self.text}]
        if thinking:
            whole.insert(0, {"text": REASONING, "thought": True})
        return Reply(json=self.response(model, whole, "STOP", True, thinking))


class FakeOllama(FakeUpstream):
    """``POST /api/chat`` as Ollama answers it (JSON, or NDJSON ending with ``done: true``; streams by default).
    ``think`` (true or a level) adds ``message.thinking``, streamed before the content."""

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
        if request.method == "GET" and request.path == "/api/tags":
            return ollama_tags(request)
        doc = request.json
        model = str(doc.get("model", ""))
        tools = [t["function"]["name"] for t in doc.get("tools") or []]
        thinking = doc.get("think") not in (None, False)
        call = tool_call_of(tools)
        message: dict[str, Any] = {"role": "assistant", "content": "" if call else self.text}
        if thinking:
            message["thinking"] = REASONING
        if call:
            message["tool_calls"] = [{"function": {"name": call[0], "arguments": call[1]}}]
        if not doc.get("stream", True):
            return Reply(json=self.final(model, message))
        partial = {"model": model, "created_at": "2026-01-01T00:00:00Z", "done": False}
        pieces = [{"role": "assistant", "content": "", "thinking": w} for w in words(REASONING)] if thinking else []
        if call:  # Ollama sends a call whole, in a chunk of its own before the final one
            pieces.append({"role": "assistant", "content": "", "tool_calls": message["tool_calls"]})
        else:
            pieces += [{"role": "assistant", "content": w} for w in words(self.text)]
        lines = [jsonx.dumps({**partial, "message": m}) + b"\n" for m in pieces]
        lines.append(jsonx.dumps(self.final(model, {"role": "assistant", "content": ""})) + b"\n")
        return Reply(frames=lines, content_type="application/x-ndjson")


class FakeResponses(FakeUpstream):
    """``POST /v1/responses`` as OpenAI answers it: a ``Response`` object, or with ``stream`` the full event sequence
    (``response.created`` … ``response.completed``, every event named and numbered). ``reasoning`` with an effort
    (other than ``none``) puts a ``reasoning`` item first; like OpenAI, its summary holds text only when the request
    asks for one (``reasoning.summary``)."""

    prefix = "/v1"
    usage = {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 18,
    }

    def __init__(self, text: str = TEXT) -> None:
        super().__init__(text)

    def output(self, tools: list[str], reasoning: bool, summary: bool) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if reasoning:
            texts = [{"type": "summary_text", "text": REASONING}] if summary else []
            items.append({"type": "reasoning", "id": "rs_fake", "summary": texts})
        call = tool_call_of(tools)
        if call:
            items.append(
                {
                    "type": "function_call",
                    "id": "fc_fake",
                    "call_id": "call_fake_1",
                    "name": call[0],
                    "arguments": jsonx.dumps_str(call[1]),
                    "status": "completed",
                }
            )
        else:
            part = {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}
            items.append(
                {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant", "content": [part]}
            )
        return items

    def response(
        self, doc: dict[str, Any], output: list[dict[str, Any]], status: str = "completed", reasoning: bool = False
    ) -> dict[str, Any]:
        usage = {**self.usage, "output_tokens_details": {"reasoning_tokens": 2 if reasoning else 0}}
        return {
            "id": "resp_fake",
            "object": "response",
            "created_at": 1_700_000_000,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": doc.get("instructions"),
            "max_output_tokens": doc.get("max_output_tokens"),
            "model": str(doc.get("model", "")),
            "output": output,
            "parallel_tool_calls": doc.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": {"effort": (doc.get("reasoning") or {}).get("effort"), "summary": None},
            "store": doc.get("store", True),
            "temperature": doc.get("temperature", 1.0),
            "text": doc.get("text") or {"format": {"type": "text"}},
            "tool_choice": doc.get("tool_choice", "auto"),
            "tools": doc.get("tools") or [],
            "top_p": doc.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage if status == "completed" else None,
            "user": None,
            "metadata": doc.get("metadata") or {},
        }

    def events(self, doc: dict[str, Any], output: list[dict[str, Any]], reasoning: bool) -> list[bytes]:
        seq: list[dict[str, Any]] = []

        def emit(kind: str, **fields: Any) -> None:
            seq.append({"type": kind, **fields})

        emit("response.created", response=self.response(doc, [], "in_progress"))
        emit("response.in_progress", response=self.response(doc, [], "in_progress"))
        for index, item in enumerate(output):
            at = {"item_id": item["id"], "output_index": index}
            if item["type"] == "reasoning":
                emit("response.output_item.added", output_index=index, item={**item, "summary": []})
                for s, summary in enumerate(item["summary"]):
                    empty = {"type": "summary_text", "text": ""}
                    emit("response.reasoning_summary_part.added", **at, summary_index=s, part=empty)
                    for piece in words(summary["text"]):
                        emit("response.reasoning_summary_text.delta", **at, summary_index=s, delta=piece)
                    emit("response.reasoning_summary_text.done", **at, summary_index=s, text=summary["text"])
                    emit("response.reasoning_summary_part.done", **at, summary_index=s, part=summary)
            elif item["type"] == "message":
                added = {**item, "status": "in_progress", "content": []}
                emit("response.output_item.added", output_index=index, item=added)
                part = item["content"][0]
                empty = {**part, "text": ""}
                emit("response.content_part.added", **at, content_index=0, part=empty)
                for piece in words(part["text"]):
                    emit("response.output_text.delta", **at, content_index=0, delta=piece, logprobs=[])
                emit("response.output_text.done", **at, content_index=0, text=part["text"], logprobs=[])
                emit("response.content_part.done", **at, content_index=0, part=part)
            else:
                added = {**item, "arguments": "", "status": "in_progress"}
                emit("response.output_item.added", output_index=index, item=added)
                args = item["arguments"]
                for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                    emit("response.function_call_arguments.delta", **at, delta=piece)
                emit("response.function_call_arguments.done", **at, name=item["name"], arguments=args)
            emit("response.output_item.done", output_index=index, item=item)
        emit("response.completed", response=self.response(doc, output, reasoning=reasoning))
        return [_sse(e["type"], {**e, "sequence_number": n}) for n, e in enumerate(seq)]

    def default(self, request: Recorded) -> Reply:
        doc = request.json
        tools = [t["name"] for t in doc.get("tools") or [] if t.get("type") == "function"]
        config = doc.get("reasoning") or {}
        reasoning = config.get("effort") not in (None, "none")
        output = self.output(tools, reasoning, summary=reasoning and config.get("summary") is not None)
        if doc.get("stream"):
            return Reply(frames=self.events(doc, output, reasoning))
        return Reply(json=self.response(doc, output, reasoning=reasoning))
