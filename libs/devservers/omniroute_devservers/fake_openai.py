"""A fake OpenAI-compatible upstream (Chat Completions, and embeddings, images and transcriptions through
:mod:`omniroute_devservers.fake_media`) that speaks the real wire format.

Without a script it answers like OpenAI: a JSON completion, or an SSE stream ending with ``[DONE]`` (with the
usage chunk when ``stream_options.include_usage``); when the request offers tools it calls the first one. When the
request sets ``reasoning_effort`` (other than ``none``) it also returns :data:`REASONING` as ``reasoning_content``,
the OpenAI-compatible convention (DeepSeek, vLLM) the gateway reads, in the message or in deltas before the answer.
``GET /v1/models`` lists :data:`~omniroute_devservers.fake_models.MODEL_IDS`.
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_devservers.fake_media import openai_media
from omniroute_devservers.fake_models import openai_models
from omniroute_devservers.fake_upstream import REASONING, TEXT, FakeUpstream, Recorded, Reply, tool_call_of, words

__all__ = ["USAGE", "FakeOpenAI", "Recorded", "Reply"]

USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 3},
    "completion_tokens_details": {"reasoning_tokens": 2},
}
_TOOL_ID = "call_fake_1"


class FakeOpenAI(FakeUpstream):
    prefix = "/v1"

    def __init__(self, text: str = TEXT) -> None:
        super().__init__(text)

    def completion(self, model: str, tools: list[str] | None = None, reasoning: bool = False) -> dict[str, Any]:
        call = tool_call_of(tools or [])
        message: dict[str, Any] = {"role": "assistant", "content": None if call else self.text, "refusal": None}
        if reasoning:
            message["reasoning_content"] = REASONING
        if call:
            message["tool_calls"] = [
                {
                    "id": _TOOL_ID,
                    "type": "function",
                    "function": {"name": call[0], "arguments": jsonx.dumps_str(call[1])},
                }
            ]
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if call else "stop"}
            ],
            "usage": USAGE,
        }

    def chunks(
        self, model: str, include_usage: bool, tools: list[str] | None = None, reasoning: bool = False
    ) -> list[bytes]:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model}
        call = tool_call_of(tools or [])
        out = [jsonx.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
        if reasoning:
            for piece in words(REASONING):
                reasoning_delta = {"reasoning_content": piece}
                out.append(jsonx.dumps({**base, "choices": [{"index": 0, "delta": reasoning_delta}]}))
        if call:
            args = jsonx.dumps_str(call[1])
            first = {"index": 0, "id": _TOOL_ID, "type": "function", "function": {"name": call[0], "arguments": ""}}
            out.append(jsonx.dumps({**base, "choices": [{"index": 0, "delta": {"tool_calls": [first]}}]}))
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                out.append(jsonx.dumps({**base, "choices": [{"index": 0, "delta": delta}]}))
        else:
            for piece in words(self.text):
                out.append(jsonx.dumps({**base, "choices": [{"index": 0, "delta": {"content": piece}}]}))
        finish = "tool_calls" if call else "stop"
        out.append(jsonx.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
        if include_usage:
            out.append(jsonx.dumps({**base, "choices": [], "usage": USAGE}))
        return out

    def default(self, request: Recorded) -> Reply:
        if request.method == "GET" and request.path.split("?")[0] == "/v1/models":
            return openai_models(request)
        media = openai_media(request)  # embeddings, images, transcriptions
        if media is not None:
            return media
        doc = request.json
        model = str(doc.get("model", ""))
        tools = [t["function"]["name"] for t in doc.get("tools") or []]
        reasoning = doc.get("reasoning_effort") not in (None, "none")
        if doc.get("stream"):
            include = bool((doc.get("stream_options") or {}).get("include_usage"))
            return Reply(events=self.chunks(model, include, tools, reasoning))
        return Reply(json=self.completion(model, tools, reasoning))
