"""OpenAI Chat Completions responses ↔ hub responses, and the usage dialects of OpenAI-compatible providers."""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, Context, DecodedResponse, HubResponse
from omniroute_translator.codecs.hub import usage_to_proto
from omniroute_translator.codecs.openai_chat.errors import error_from_envelope
from omniroute_translator.codecs.think import split_think

__all__ = ["decode_response", "encode_response", "normalize_message", "normalize_usage"]


def normalize_usage(raw: Any) -> dict[str, Any] | None:
    """Provider usage into hub usage: every field kept, the hub's canonical ones filled from known dialects.

    - ``prompt_tokens_details.cached_tokens`` from DeepSeek's ``prompt_cache_hit_tokens``;
    - ``prompt_tokens_details.cache_write_tokens`` from ``cache_creation_input_tokens`` (Anthropic-backed
      OpenAI-compatible gateways);
    - ``total_tokens`` = prompt + completion when absent.

    Returns ``None`` for a missing or non-object usage.
    """
    if not isinstance(raw, dict):
        return None
    usage = dict(raw)
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    details = dict(usage.get("prompt_tokens_details") or {})
    if "cached_tokens" not in details and isinstance(usage.get("prompt_cache_hit_tokens"), int):
        details["cached_tokens"] = usage["prompt_cache_hit_tokens"]
    if "cache_write_tokens" not in details and isinstance(usage.get("cache_creation_input_tokens"), int):
        details["cache_write_tokens"] = usage["cache_creation_input_tokens"]
    if details:
        usage["prompt_tokens_details"] = details
    if not isinstance(usage.get("total_tokens"), int) and isinstance(prompt, int) and isinstance(completion, int):
        usage["total_tokens"] = prompt + completion
    return usage


def normalize_message(message: dict[str, Any]) -> dict[str, Any]:
    """Reasoning in the hub's field: a ``reasoning`` alias (vLLM, OpenRouter) renamed to ``reasoning_content``,
    and a leading ``<think>`` block moved out of ``content``."""
    out = dict(message)
    if "reasoning_content" not in out and isinstance(out.get("reasoning"), str):
        reasoning = out.pop("reasoning")
        if reasoning:
            out["reasoning_content"] = reasoning
    content = out.get("content")
    if isinstance(content, str) and content:
        thought, text = split_think(content)
        if thought:
            out["reasoning_content"] = (out.get("reasoning_content") or "") + thought
            out["content"] = text
    return out


def decode_response(body: bytes) -> DecodedResponse:
    """A ``chat.completion`` body into the hub. Raises :class:`CodecError`: the provider's own error when the body
    is an error envelope, 502 when it is not a completion at all."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise CodecError(hub_error(502, "The upstream response is not valid JSON.")) from exc
    if not isinstance(doc, dict):
        raise CodecError(hub_error(502, "The upstream response is not a JSON object."))
    if doc.get("error") is not None and not doc.get("choices"):
        raise CodecError(error_from_envelope(doc))
    choices = doc.get("choices")
    if not isinstance(choices, list):
        raise CodecError(hub_error(502, "The upstream response has no 'choices' array."))
    hub = dict(doc)
    hub["choices"] = [_decode_choice(c) for c in choices]
    usage = normalize_usage(doc.get("usage"))
    if usage is None:
        hub.pop("usage", None)
    else:
        hub["usage"] = usage
    return DecodedResponse(hub, usage_to_proto(usage))


def _decode_choice(choice: Any) -> Any:
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        return choice
    return {**choice, "message": normalize_message(choice["message"])}


def encode_response(hub: HubResponse, ctx: Context) -> bytes:
    """A hub response as a ``chat.completion`` body that validates against OpenAI's schema.

    ``model`` is the context's (the name the client asked for); ``id`` and ``created`` are the hub's, else
    ``chatcmpl-<request id>`` and the context's time. Each choice gets ``index``, ``logprobs`` and a
    ``finish_reason`` (``stop`` when the hub has none). Reasoning extensions are kept for clients that read them.
    """
    out: dict[str, Any] = {
        "id": hub.get("id") or f"chatcmpl-{ctx.request_id}",
        "object": "chat.completion",
        "created": hub.get("created") or ctx.created_unix,
        "model": ctx.model or hub.get("model") or "",
    }
    choices = hub.get("choices")
    out["choices"] = [_encode_choice(c, i) for i, c in enumerate(choices if isinstance(choices, list) else [])]
    for key, value in hub.items():
        if key not in out and value is not None:
            out[key] = value
    return jsonx.dumps(out)


def _encode_choice(choice: Any, index: int) -> dict[str, Any]:
    src = choice if isinstance(choice, dict) else {}
    message = {"role": "assistant", "content": None, "refusal": None, **(src.get("message") or {})}
    return {
        "index": src.get("index", index),
        "message": message,
        "logprobs": src.get("logprobs"),
        "finish_reason": src.get("finish_reason") or "stop",
        **{k: v for k, v in src.items() if k not in ("index", "message", "logprobs", "finish_reason")},
    }
