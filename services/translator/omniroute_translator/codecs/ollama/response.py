"""Ollama ``/api/chat`` responses (``stream: false``) ↔ hub ``chat.completion``.

Usage: ``prompt_eval_count`` is ``prompt_tokens``; ``eval_count`` (every generated token, thinking included) is
``completion_tokens``, which also includes reasoning in the hub. Ollama reports no cached or reasoning split, so
those hub details are dropped when encoding. Durations are not reported by the gateway (they would be invented).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, Context, DecodedResponse, HubResponse
from omniroute_translator.codecs.hub import usage_to_proto
from omniroute_translator.codecs.ollama._messages import hub_tool_calls, obj, ollama_tool_calls
from omniroute_translator.codecs.ollama.errors import error_from_body

__all__ = [
    "created_at",
    "decode_response",
    "done_reason",
    "encode_response",
    "finish_reason",
    "native_message",
    "usage_from_ollama",
    "usage_to_ollama",
]


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_ollama(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The counts of a final (``done``) object as hub usage, or ``None`` when it has none."""
    if "prompt_eval_count" not in doc and "eval_count" not in doc:
        return None
    prompt, completion = _count(doc.get("prompt_eval_count")), _count(doc.get("eval_count"))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def usage_to_ollama(usage: Any) -> dict[str, int]:
    if not isinstance(usage, dict):
        return {}
    proto = usage_to_proto(usage)
    return {"prompt_eval_count": proto.input_tokens, "eval_count": proto.output_tokens}


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    """``done_reason`` as a hub finish reason (``length`` stays; ``stop``, ``load``, ``unload`` are stops)."""
    if reason == "length":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def done_reason(reason: Any) -> str:
    return "length" if reason == "length" else "stop"


def created_at(unix: int) -> str:
    """Ollama's RFC 3339 timestamp for a Unix time (given by the caller; never read from a clock)."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_response(body: bytes) -> DecodedResponse:
    """A non-streamed ``/api/chat`` body into a hub response. Raises :class:`CodecError`: the provider's error
    for ``{"error": …}``, 502 for a body without a ``message``."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise CodecError(hub_error(502, "The upstream response is not valid JSON.")) from exc
    if not isinstance(doc, dict):
        raise CodecError(hub_error(502, "The upstream response is not a JSON object."))
    if "error" in doc:
        raise CodecError(error_from_body(doc))
    if not isinstance(doc.get("message"), dict):
        raise CodecError(hub_error(502, "The upstream response has no 'message'."))
    native = doc["message"]
    message: dict[str, Any] = {"role": "assistant", "content": native.get("content") or None}
    if isinstance(native.get("thinking"), str) and native["thinking"]:
        message["reasoning_content"] = native["thinking"]
    calls = hub_tool_calls(native.get("tool_calls"), 0)
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "finish_reason": finish_reason(doc.get("done_reason"), bool(calls))}
    hub: dict[str, Any] = {"object": "chat.completion", "choices": [choice]}
    if isinstance(doc.get("model"), str):
        hub["model"] = doc["model"]
    usage = usage_from_ollama(doc)
    if usage is not None:
        hub["usage"] = usage
    return DecodedResponse(hub, usage_to_proto(usage))


def native_message(message: dict[str, Any]) -> dict[str, Any]:
    """A hub assistant message (or delta) as an Ollama message (a refusal is the content: Ollama has no field)."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(obj(p).get("text") or "") for p in content)
    if not content and isinstance(message.get("refusal"), str):
        content = message["refusal"]
    out: dict[str, Any] = {"role": "assistant", "content": content or ""}
    if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        out["thinking"] = message["reasoning_content"]
    calls = ollama_tool_calls(message.get("tool_calls"))
    if calls:
        out["tool_calls"] = calls
    return out


def encode_response(hub: HubResponse, ctx: Context) -> bytes:
    """A hub response as a ``done: true`` ``/api/chat`` body (the first choice: Ollama has one)."""
    choices = hub.get("choices")
    choice = obj(choices[0]) if isinstance(choices, list) and choices else {}
    out: dict[str, Any] = {
        "model": ctx.model or str(hub.get("model") or ""),
        "created_at": created_at(ctx.created_unix or _count(hub.get("created"))),
        "message": native_message(obj(choice.get("message"))),
        "done": True,
        "done_reason": done_reason(choice.get("finish_reason")),
        **usage_to_ollama(hub.get("usage")),
    }
    return jsonx.dumps(out)
