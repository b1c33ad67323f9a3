"""Ollama chat messages ↔ hub messages (shared by requests, responses and streams).

Ollama has no tool-call ids: a decoded call gets ``call_<n>`` (``n`` counts calls across the conversation, or
the call's own ``id`` when a newer Ollama sent one), and a ``tool`` message is matched to the earliest
unanswered call with its ``tool_name`` (or to the earliest unanswered call when it names none). Images are bare
base64 strings: their MIME type is sniffed from the first bytes for the hub's data URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError

__all__ = ["call_args", "decode_messages", "encode_messages", "hub_tool_calls", "obj", "ollama_tool_calls"]

_DATA_URL = re.compile(r"^data:[^,]*;base64,(.*)$", re.DOTALL)
# base64 prefixes of common image magic numbers
_MIME_BY_PREFIX: Mapping[str, str] = {
    "iVBOR": "image/png",
    "/9j/": "image/jpeg",
    "R0lG": "image/gif",
    "UklG": "image/webp",
}
_ROLES = frozenset({"system", "user", "assistant", "tool"})


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _invalid(message: str, param: str) -> CodecError:
    return CodecError(hub_error(400, message, param=param))


def _image_part(data: str) -> dict[str, Any]:
    mime = next((m for prefix, m in _MIME_BY_PREFIX.items() if data.startswith(prefix)), "image/jpeg")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def hub_tool_calls(calls: Any, first: int) -> list[dict[str, Any]]:
    """Ollama tool calls (arguments as an object) as hub tool calls (arguments as a JSON string)."""
    out: list[dict[str, Any]] = []
    for call in calls if isinstance(calls, list) else []:
        function = obj(obj(call).get("function"))
        out.append(
            {
                "id": str(obj(call).get("id") or f"call_{first + len(out)}"),
                "type": "function",
                "function": {
                    "name": str(function.get("name") or ""),
                    "arguments": jsonx.dumps_str(function.get("arguments") or {}),
                },
            }
        )
    return out


def decode_messages(messages: Any) -> list[dict[str, Any]]:
    """Ollama messages as hub messages. Raises :class:`CodecError` (400) for a malformed message or a tool
    result that answers no earlier call."""
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty array.", "messages")
    out: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []
    n_calls = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise _invalid(f"messages[{i}] must be an object with role {', '.join(sorted(_ROLES))}.", f"messages[{i}]")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise _invalid(f"messages[{i}].content must be a string.", f"messages[{i}].content")
        role = message["role"]
        hub: dict[str, Any] = {"role": role, "content": content or ""}
        images = [img for img in message.get("images") or [] if isinstance(img, str)]
        if images:
            text = [{"type": "text", "text": content}] if content else []
            hub["content"] = text + [_image_part(img) for img in images]
        if role == "assistant":
            if isinstance(message.get("thinking"), str) and message["thinking"]:
                hub["reasoning_content"] = message["thinking"]
            calls = hub_tool_calls(message.get("tool_calls"), n_calls)
            if calls:
                hub["tool_calls"] = calls
                hub["content"] = hub["content"] or None
                n_calls += len(calls)
                pending += [(c["function"]["name"], c["id"]) for c in calls]
        elif role == "tool":
            hub["tool_call_id"] = _answer(message, pending, i)
        out.append(hub)
    return out


def _answer(message: dict[str, Any], pending: list[tuple[str, str]], i: int) -> str:
    name = message.get("tool_name") or message.get("name")
    match = next((k for k, (n, _) in enumerate(pending) if not name or n == name), None)
    if match is None:
        raise _invalid(f"messages[{i}] is a tool result that answers no earlier tool call.", f"messages[{i}]")
    return pending.pop(match)[1]


def call_args(arguments: Any) -> dict[str, Any]:
    """OpenAI's JSON-string arguments as Ollama's object; non-object arguments are kept under ``_raw``."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = jsonx.loads(arguments)
    except jsonx.JSONDecodeError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def ollama_tool_calls(calls: Any) -> list[dict[str, Any]]:
    """Hub tool calls as Ollama's ``[{function: {name, arguments: {...}}}]``."""
    out: list[dict[str, Any]] = []
    for call in calls if isinstance(calls, list) else []:
        function = obj(obj(call).get("function"))
        if function:
            out.append(
                {
                    "function": {
                        "name": str(function.get("name") or ""),
                        "arguments": call_args(function.get("arguments")),
                    }
                }
            )
    return out


def _text_and_images(content: Any) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for raw in content if isinstance(content, list) else []:
        part = obj(raw)
        if part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            match = _DATA_URL.match(str(obj(image).get("url") if isinstance(image, dict) else image or ""))
            if match:  # Ollama takes base64 only; an http URL is dropped (README table)
                images.append(match.group(1))
    return "\n".join(texts), images


def encode_messages(messages: Any) -> list[dict[str, Any]]:
    """Hub messages as Ollama messages: developer → system, reasoning → ``thinking``, tool results named by the
    call they answer (``tool_name``). Dropped: http image URLs, audio and file parts, ``reasoning_details``."""
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for raw in messages if isinstance(messages, list) else []:
        message = obj(raw)
        role = "system" if message.get("role") == "developer" else str(message.get("role") or "user")
        text, images = _text_and_images(message.get("content"))
        if role == "assistant" and not text and isinstance(message.get("refusal"), str):
            text = message["refusal"]
        item: dict[str, Any] = {"role": role, "content": text}
        if images:
            item["images"] = images
        if role == "assistant":
            if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
                item["thinking"] = message["reasoning_content"]
            calls = ollama_tool_calls(message.get("tool_calls"))
            for call, hub_call in zip(calls, message.get("tool_calls") or [], strict=False):
                names[str(obj(hub_call).get("id"))] = call["function"]["name"]
            if calls:
                item["tool_calls"] = calls
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id") or "")) or message.get("name")
            if name:
                item["tool_name"] = name
        out.append(item)
    return out
