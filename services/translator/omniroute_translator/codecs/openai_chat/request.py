"""OpenAI Chat Completions requests ↔ hub requests.

Decoding is validation plus identity (the hub is this format). Encoding for an OpenAI-compatible provider
removes the hub's extension fields such providers reject, and asks for usage on streams so it can be metered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, HubRequest

__all__ = ["decode_request", "encode_request"]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
# Hub extensions with no OpenAI field. `thinking` is first mapped onto reasoning_effort (see _effort).
_HUB_ONLY_FIELDS = ("top_k", "thinking", "x_passthrough")
# Message extensions: OpenAI rejects unknown message fields, and DeepSeek answers 400 when reasoning_content is
# sent back, so a previous turn's reasoning is not replayed to OpenAI-format providers.
_HUB_ONLY_MESSAGE_FIELDS = ("reasoning_content", "reasoning_details")
_PASSTHROUGH_KEY = "openai"


def _invalid(message: str, param: str) -> CodecError:
    return CodecError(hub_error(400, message, param=param))


def decode_request(body: bytes) -> HubRequest:
    """Parse and validate a chat-completions body. Raises :class:`CodecError` (400) when it is not a JSON
    object, names no model, or has no valid ``messages`` list."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise _invalid("The request body is not valid JSON.", "") from exc
    if not isinstance(doc, dict):
        raise _invalid("The request body must be a JSON object.", "")
    model = doc.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("You must provide a model parameter (a non-empty string).", "model")
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty array.", "messages")
    for i, message in enumerate(messages):
        _validate_message(message, i)
    if "stream" in doc and not isinstance(doc["stream"], bool):
        raise _invalid("'stream' must be a boolean.", "stream")
    return doc


def _validate_message(message: Any, i: int) -> None:
    if not isinstance(message, dict):
        raise _invalid(f"messages[{i}] must be an object.", f"messages[{i}]")
    role = message.get("role")
    if role not in _ROLES:
        raise _invalid(
            f"messages[{i}].role must be one of {', '.join(sorted(_ROLES))}; got {role!r}.", f"messages[{i}].role"
        )
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise _invalid(f"messages[{i}].content must be a string, an array of parts or null.", f"messages[{i}].content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _invalid(
                    f"messages[{i}].content[{j}] must be an object with a 'type'.", f"messages[{i}].content[{j}]"
                )
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise _invalid(f"messages[{i}] has role 'tool' but no tool_call_id.", f"messages[{i}].tool_call_id")


def encode_request(hub: HubRequest, model: str) -> bytes:
    """A hub request as an OpenAI chat-completions body for ``model``.

    Dropped on purpose: ``top_k``; ``thinking`` (mapped to ``reasoning_effort`` when that is unset);
    ``reasoning_content`` / ``reasoning_details`` on messages; ``cache_control`` on parts. ``x_passthrough.openai``
    is merged in last. A streaming request always asks for the usage chunk (``stream_options.include_usage``).
    """
    body: dict[str, Any] = {"model": model}
    for key, value in hub.items():
        if key in _HUB_ONLY_FIELDS or key == "model":
            continue
        body[key] = _encode_messages(value) if key == "messages" and isinstance(value, list) else value
    effort = _effort(hub.get("thinking"))
    if effort and "reasoning_effort" not in body:
        body["reasoning_effort"] = effort
    if body.get("stream") is True:
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    passthrough = hub.get("x_passthrough")
    if isinstance(passthrough, dict) and isinstance(passthrough.get(_PASSTHROUGH_KEY), dict):
        body.update(passthrough[_PASSTHROUGH_KEY])
    return jsonx.dumps(body)


def _encode_messages(messages: list[Any]) -> list[Any]:
    out: list[Any] = []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        clean = {k: v for k, v in message.items() if k not in _HUB_ONLY_MESSAGE_FIELDS}
        content = clean.get("content")
        if isinstance(content, list):
            clean["content"] = [
                {k: v for k, v in part.items() if k != "cache_control"} if isinstance(part, dict) else part
                for part in content
            ]
        out.append(clean)
    return out


def _effort(thinking: Any) -> str:
    """A thinking budget as an OpenAI reasoning effort (the inverse of the usual 1024/2048/4096 mapping)."""
    if not isinstance(thinking, Mapping) or thinking.get("type") != "enabled":
        return ""
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget <= 0:
        return "medium"
    if budget <= 1024:
        return "low"
    if budget <= 2048:
        return "medium"
    return "high"
