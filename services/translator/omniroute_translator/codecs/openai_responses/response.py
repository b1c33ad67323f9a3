"""OpenAI Responses bodies (``object: "response"``) ↔ hub responses.

Decoding (a provider's body): ``output`` items fold into one hub choice: ``message`` items' ``output_text`` parts →
``content``, ``refusal`` parts → ``refusal``; ``function_call`` items → ``tool_calls`` (``call_id`` is the hub
id); ``reasoning`` items → ``reasoning_content`` (summary texts, else reasoning ``content`` texts, joined by a
blank line). ``status`` → ``finish_reason`` (see :func:`._common.finish_reason`); a ``failed`` response or an
error envelope raises :class:`CodecError` with the provider's error.

Encoding (to a client): choice 0 becomes ``output`` = [reasoning item, message item, function_call items], with
ids derived from the request id (``rs_``/``msg_``/``fc_<request id>_<output index>``; the response is
``resp_<request id>``). ``length`` / ``content_filter`` → ``status: incomplete`` with ``incomplete_details``.
The request's settings that a response echoes (``tools``, ``tool_choice``, ``temperature``, ``instructions``, …)
are not in the hub response: they are written as neutral values (``[]``, ``"auto"``, ``null``).
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, Context, DecodedResponse, HubResponse
from omniroute_translator.codecs.hub import usage_to_proto
from omniroute_translator.codecs.openai_responses._common import (
    INCOMPLETE_BY_FINISH,
    finish_reason,
    integer,
    obj,
    text,
    usage_from_hub,
    usage_to_hub,
)
from omniroute_translator.codecs.openai_responses.errors import error_from_envelope, error_from_event

__all__ = [
    "decode_response",
    "encode_response",
    "function_item",
    "message_item",
    "reasoning_item",
    "response_object",
]


def decode_response(body: bytes) -> DecodedResponse:
    """A Responses body into the hub; see the module docstring."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise CodecError(hub_error(502, "The upstream response is not valid JSON.")) from exc
    if not isinstance(doc, dict):
        raise CodecError(hub_error(502, "The upstream response is not a JSON object."))
    if doc.get("object") != "response" and doc.get("error") is not None:
        raise CodecError(error_from_envelope(doc))
    if doc.get("status") == "failed":
        raise CodecError(error_from_event({"type": "response.failed", "response": doc}))
    output = doc.get("output")
    if not isinstance(output, list):
        raise CodecError(hub_error(502, "The upstream response has no 'output' array."))
    message = message_from_output(output)
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason(doc.get("status"), doc.get("incomplete_details"), "tool_calls" in message),
    }
    hub: HubResponse = {
        "id": text(doc.get("id")),
        "object": "chat.completion",
        "created": int(doc["created_at"]) if isinstance(doc.get("created_at"), int | float) else 0,
        "model": text(doc.get("model")),
        "choices": [choice],
    }
    usage = usage_to_hub(doc["usage"]) if isinstance(doc.get("usage"), dict) else None
    if usage is not None:
        hub["usage"] = usage
    return DecodedResponse(hub, usage_to_proto(usage))


def message_from_output(output: list[Any]) -> dict[str, Any]:
    """The hub assistant message of a response's ``output`` items."""
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in (obj(i) for i in output):
        kind = item.get("type")
        if kind == "message":
            for part in (obj(p) for p in item.get("content") or []):
                if part.get("type") == "output_text":
                    texts.append(text(part.get("text")))
                elif part.get("type") == "refusal":
                    refusals.append(text(part.get("refusal")))
        elif kind == "function_call":
            function = {"name": text(item.get("name")), "arguments": text(item.get("arguments"))}
            calls.append({"id": text(item.get("call_id") or item.get("id")), "type": "function", "function": function})
        elif kind == "reasoning":
            pieces = item.get("summary") or item.get("content") or []
            reasoning.append("\n\n".join(text(obj(p).get("text")) for p in pieces))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    if any(reasoning):
        message["reasoning_content"] = "\n\n".join(r for r in reasoning if r)
    if calls:
        message["tool_calls"] = calls
    return message


def message_item(item_id: str, content: str, refusal: str, status: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if content or not refusal:
        parts.append({"type": "output_text", "text": content, "annotations": [], "logprobs": []})
    if refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item_id, "role": "assistant", "status": status, "content": parts}


def reasoning_item(item_id: str, summary: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": summary}]}


def function_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    ctx: Context, hub_id: Any, created: Any, status: str, output: list[dict[str, Any]], finish: str = ""
) -> dict[str, Any]:
    """A ``Response`` with every field OpenAI's schema requires; ``usage`` is added by the caller when known."""
    reason = INCOMPLETE_BY_FINISH.get(finish) if status == "incomplete" else None
    return {
        "id": f"resp_{ctx.request_id}" if ctx.request_id else text(hub_id) or "resp",
        "object": "response",
        "created_at": integer(created) or ctx.created_unix,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": ctx.model or "",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "metadata": {},
    }


def encode_response(hub: HubResponse, ctx: Context) -> bytes:
    """A hub response as a ``Response`` body valid against OpenAI's schema and the official SDK's model."""
    choices = hub.get("choices")
    choice = obj(choices[0]) if isinstance(choices, list) and choices else {}
    message = obj(choice.get("message"))
    finish = text(choice.get("finish_reason")) or "stop"
    status = "incomplete" if finish in INCOMPLETE_BY_FINISH else "completed"
    item_status = "incomplete" if status == "incomplete" else "completed"
    request_id = ctx.request_id or "0"
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(f"rs_{request_id}_{len(output)}", reasoning))
    content = _content_text(message.get("content"))
    refusal = text(message.get("refusal"))
    calls = [obj(c) for c in message.get("tool_calls") or []]
    if content or refusal or not calls:
        output.append(message_item(f"msg_{request_id}_{len(output)}", content, refusal, item_status))
    for call in calls:
        function = obj(call.get("function"))
        item_id = f"fc_{request_id}_{len(output)}"
        name, arguments = text(function.get("name")), text(function.get("arguments"))
        output.append(function_item(item_id, text(call.get("id")) or item_id, name, arguments, "completed"))
    body = response_object(ctx, hub.get("id"), hub.get("created"), status, output, finish)
    if model := ctx.model or text(hub.get("model")):
        body["model"] = model
    if isinstance(hub.get("usage"), dict):
        body["usage"] = usage_from_hub(hub["usage"])
    return jsonx.dumps(body)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text(obj(p).get("text")) for p in content if obj(p).get("type") in ("text", "output_text"))
    return ""
