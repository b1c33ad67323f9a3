"""Gemini ``GenerateContentResponse`` ↔ hub ``chat.completion``, usage and finish reasons.

Usage, exactly:

- ``promptTokenCount`` includes ``cachedContentTokenCount`` (as hub ``prompt_tokens`` includes ``cached_tokens``);
  ``toolUsePromptTokenCount`` (e.g. search results) is counted as prompt too.
- ``candidatesTokenCount`` **excludes** ``thoughtsTokenCount``, while hub ``completion_tokens`` **includes**
  ``reasoning_tokens``: completion = candidates + thoughts, reasoning = thoughts; back: candidates = completion -
  reasoning, thoughts = reasoning.
- ``totalTokenCount`` = prompt + tool-use prompt + candidates + thoughts = hub ``total_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, Context, DecodedResponse, HubResponse
from omniroute_translator.codecs.gemini._parts import assistant_message, obj, reasoning_parts, tool_call_to_part
from omniroute_translator.codecs.gemini.errors import error_from_envelope
from omniroute_translator.codecs.hub import usage_to_proto

__all__ = [
    "FINISH_TO_GEMINI",
    "block_refusal",
    "decode_response",
    "encode_response",
    "finish_reason",
    "message_parts",
    "usage_from_gemini",
    "usage_to_gemini",
]

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
        "LANGUAGE",
    }
)
FINISH_TO_GEMINI: Mapping[str, str] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "content_filter": "SAFETY",
}
TOOL_ID_PREFIX = "call_"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_gemini(meta: Any) -> dict[str, Any] | None:
    """``usageMetadata`` as hub usage (module docstring), or ``None`` when absent."""
    if not isinstance(meta, dict):
        return None
    prompt = _count(meta.get("promptTokenCount")) + _count(meta.get("toolUsePromptTokenCount"))
    thoughts = _count(meta.get("thoughtsTokenCount"))
    completion = _count(meta.get("candidatesTokenCount")) + thoughts
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _count(meta.get("totalTokenCount")) or prompt + completion,
    }
    cached = _count(meta.get("cachedContentTokenCount"))
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


def usage_to_gemini(usage: Any) -> dict[str, Any] | None:
    """Hub usage as ``usageMetadata`` (zero cached / thought counts are omitted, as Gemini does). Hub
    ``cache_write_tokens`` has no Gemini field; those tokens stay inside ``promptTokenCount``."""
    if not isinstance(usage, dict):
        return None
    proto = usage_to_proto(usage)
    meta: dict[str, Any] = {
        "promptTokenCount": proto.input_tokens,
        "candidatesTokenCount": max(proto.output_tokens - proto.reasoning_tokens, 0),
        "totalTokenCount": proto.total_tokens,
    }
    if proto.cached_input_tokens:
        meta["cachedContentTokenCount"] = proto.cached_input_tokens
    if proto.reasoning_tokens:
        meta["thoughtsTokenCount"] = proto.reasoning_tokens
    return meta


def finish_reason(native: Any, has_tool_calls: bool) -> str | None:
    """Gemini's ``finishReason`` as a hub finish reason (``None`` while a candidate is still streaming)."""
    if not isinstance(native, str) or native == "FINISH_REASON_UNSPECIFIED":
        return None
    if native == "MAX_TOKENS":
        return "length"
    if native in _FILTERED:
        return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


def block_refusal(feedback: Any) -> str | None:
    """The refusal text for a prompt Gemini blocked (``promptFeedback.blockReason``), or ``None``."""
    if not isinstance(feedback, dict) or not feedback.get("blockReason"):
        return None
    reason = str(feedback["blockReason"])
    detail = feedback.get("blockReasonMessage")
    return f"The prompt was blocked ({reason})" + (f": {detail}" if isinstance(detail, str) and detail else ".")


def decode_response(body: bytes) -> DecodedResponse:
    """A ``GenerateContentResponse`` into a hub response. A prompt blocked by ``promptFeedback`` (no candidates)
    becomes one choice with a ``refusal`` and finish reason ``content_filter``. Raises :class:`CodecError`: the
    provider's error for an error envelope, 502 for a body that is not a response."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise CodecError(hub_error(502, "The upstream response is not valid JSON.")) from exc
    if isinstance(doc, list) or (isinstance(doc, dict) and "error" in doc and not doc.get("candidates")):
        raise CodecError(error_from_envelope(doc))
    if not isinstance(doc, dict):
        raise CodecError(hub_error(502, "The upstream response is not a JSON object."))
    candidates = doc.get("candidates")
    refusal = block_refusal(doc.get("promptFeedback"))
    if not isinstance(candidates, list) and refusal is None:
        raise CodecError(hub_error(502, "The upstream response has no 'candidates' array."))
    choices: list[dict[str, Any]] = []
    n_calls = 0
    for i, candidate in enumerate(candidates if isinstance(candidates, list) else []):
        cand = candidate if isinstance(candidate, dict) else {}
        content = obj(cand.get("content"))
        message = assistant_message(content.get("parts") or [], n_calls, TOOL_ID_PREFIX)
        n_calls += len(message.get("tool_calls") or [])
        reason = finish_reason(cand.get("finishReason"), "tool_calls" in message) or "stop"
        choices.append({"index": cand.get("index", i), "message": message, "finish_reason": reason})
    if not choices and refusal is not None:
        message = {"role": "assistant", "content": None, "refusal": refusal}
        choices.append({"index": 0, "message": message, "finish_reason": "content_filter"})
    hub: dict[str, Any] = {"object": "chat.completion", "choices": choices}
    if isinstance(doc.get("responseId"), str):
        hub["id"] = doc["responseId"]
    if isinstance(doc.get("modelVersion"), str):
        hub["model"] = doc["modelVersion"]
    usage = usage_from_gemini(doc.get("usageMetadata"))
    if usage is not None:
        hub["usage"] = usage
    return DecodedResponse(hub, usage_to_proto(usage))


def message_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A hub assistant message (or stream delta) as Gemini parts: thoughts, text (a refusal counts as text, the
    only way a Gemini client can read it), then function calls."""
    parts = reasoning_parts(message)
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    if isinstance(content, str) and content:
        parts.append({"text": content})
    elif isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"text": message["refusal"]})
    for call in message.get("tool_calls") or []:
        call_part = tool_call_to_part(call)
        if call_part is not None:
            parts.append(call_part)
    return parts


def encode_response(hub: HubResponse, ctx: Context) -> bytes:
    """A hub response as a ``GenerateContentResponse`` that validates against google-genai's model.

    ``modelVersion`` is the context's model (else the hub's); ``responseId`` the hub's id, else the request id.
    An empty message gets one empty text part (Gemini never sends a content without parts)."""
    candidates: list[dict[str, Any]] = []
    for i, choice in enumerate(hub.get("choices") or []):
        src = choice if isinstance(choice, dict) else {}
        message = obj(src.get("message"))
        candidates.append(
            {
                "content": {"role": "model", "parts": message_parts(message) or [{"text": ""}]},
                "finishReason": FINISH_TO_GEMINI.get(str(src.get("finish_reason") or "stop"), "OTHER"),
                "index": src.get("index", i),
            }
        )
    out: dict[str, Any] = {"candidates": candidates}
    usage = usage_to_gemini(hub.get("usage"))
    if usage is not None:
        out["usageMetadata"] = usage
    out["modelVersion"] = ctx.model or str(hub.get("model") or "")
    out["responseId"] = str(hub.get("id") or ctx.request_id)
    return jsonx.dumps(out)
