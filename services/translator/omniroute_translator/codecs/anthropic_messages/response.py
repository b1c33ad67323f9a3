"""Anthropic ``Message`` bodies ↔ hub ``chat.completion`` responses.

Decoding: text blocks → ``content`` (joined), ``thinking`` / ``redacted_thinking`` → ``reasoning_content`` and
``reasoning_details`` (signatures intact), ``tool_use`` → ``tool_calls`` (``input`` as a JSON string),
``stop_reason`` → ``finish_reason``, usage → hub usage (see :mod:`._usage`). Server-tool blocks and citations
are dropped. Encoding is the inverse and validates against the SDK's ``Message``.
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.anthropic_messages._usage import (
    FINISH_BY_STOP,
    STOP_BY_FINISH,
    usage_from_hub,
    usage_to_hub,
)
from omniroute_translator.codecs.anthropic_messages._util import obj
from omniroute_translator.codecs.anthropic_messages.errors import error_from_envelope
from omniroute_translator.codecs.anthropic_messages.request_encode import arguments_object
from omniroute_translator.codecs.base import CodecError, Context, DecodedResponse, HubResponse
from omniroute_translator.codecs.hub import usage_to_proto

__all__ = ["decode_response", "encode_response"]


def decode_response(body: bytes) -> DecodedResponse:
    """A ``message`` body into the hub. Raises :class:`CodecError`: the provider's error for an error envelope,
    502 when the body is not a message."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise CodecError(hub_error(502, "The upstream response is not valid JSON.")) from exc
    if not isinstance(doc, dict):
        raise CodecError(hub_error(502, "The upstream response is not a JSON object."))
    if doc.get("type") == "error":
        raise CodecError(error_from_envelope(doc))
    if not isinstance(doc.get("content"), list):
        raise CodecError(hub_error(502, "The upstream response has no 'content' array."))
    message = message_from_blocks(doc["content"])
    stop = doc.get("stop_reason")
    hub: HubResponse = {"id": doc.get("id") or "", "object": "chat.completion", "model": doc.get("model") or ""}
    hub["choices"] = [
        {"index": 0, "message": message, "finish_reason": FINISH_BY_STOP.get(stop, "stop") if stop else None}
    ]
    usage = usage_to_hub(doc["usage"]) if isinstance(doc.get("usage"), dict) else None
    if usage is not None:
        hub["usage"] = usage
    return DecodedResponse(hub, usage_to_proto(usage))


def message_from_blocks(blocks: list[Any]) -> dict[str, Any]:
    """Response content blocks as a hub assistant message."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = jsonx.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": str(block.get("id") or ""),
                    "type": "function",
                    "function": {"name": str(block.get("name") or ""), "arguments": arguments},
                }
            )
        elif kind == "thinking":
            detail = {"type": "thinking", "thinking": str(block.get("thinking") or "")}
            if isinstance(block.get("signature"), str):
                detail["signature"] = block["signature"]
            details.append(detail)
        elif kind == "redacted_thinking":
            details.append({"type": "redacted_thinking", "data": str(block.get("data") or "")})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    reasoning = "".join(d.get("thinking", "") for d in details)
    if reasoning:
        message["reasoning_content"] = reasoning
    if details:
        message["reasoning_details"] = details
    return message


def encode_response(hub: HubResponse, ctx: Context) -> bytes:
    """A hub response as an Anthropic ``message`` (the first choice; Anthropic has one).

    ``id`` is the hub's, else ``msg_<request id>``; ``model`` the context's. Blocks in Anthropic's order:
    thinking (from ``reasoning_details``, else one unsigned block from ``reasoning_content``), text (a refusal
    is text too), tool_use. ``stop_reason`` from ``finish_reason`` (none: ``end_turn``).
    """
    choices = hub.get("choices")
    choice = obj(choices[0]) if isinstance(choices, list) and choices else {}
    message = obj(choice.get("message"))
    finish = choice.get("finish_reason")
    out: dict[str, Any] = {
        "id": hub.get("id") or f"msg_{ctx.request_id}",
        "type": "message",
        "role": "assistant",
        "model": ctx.model or hub.get("model") or "",
        "content": blocks_from_message(message),
        "stop_reason": STOP_BY_FINISH.get(finish, "end_turn") if isinstance(finish, str) else "end_turn",
        "stop_sequence": None,
        "usage": usage_from_hub(hub.get("usage") if isinstance(hub.get("usage"), dict) else None),
    }
    return jsonx.dumps(out)


def blocks_from_message(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A hub assistant message as response content blocks."""
    blocks: list[dict[str, Any]] = []
    details = message.get("reasoning_details")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("type") == "thinking":
            signature = detail.get("signature")
            thinking = str(detail.get("thinking") or "")
            blocks.append({"type": "thinking", "thinking": thinking, "signature": str(signature or "")})
        elif isinstance(detail, dict) and detail.get("type") == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": str(detail.get("data") or "")})
    if not blocks and isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        # reasoning from a non-Anthropic model has no signature; the block is still shown to the client
        blocks.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    text = (content if isinstance(content, str) else "") or ""
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        text += refusal
    if text:
        blocks.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": str(call.get("id") or ""),
                    "name": str(function.get("name") or ""),
                    "input": arguments_object(function.get("arguments")),
                }
            )
    return blocks
