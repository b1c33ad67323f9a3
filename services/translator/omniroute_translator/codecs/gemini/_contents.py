"""Gemini ``contents`` + ``systemInstruction`` ↔ hub ``messages``.

Decoding: a ``user`` turn becomes a user message (its ``functionResponse`` parts become ``tool`` messages, in
order, before any other content of that turn); a ``model`` turn becomes an assistant message (thought parts →
reasoning, text → content, ``functionCall`` → ``tool_calls``). A response's ``tool_call_id`` is the call's
Gemini ``id`` when present, else the id of the earliest unanswered call with the same name.

Encoding: system and developer messages become ``systemInstruction``; consecutive ``tool`` messages become one
``user`` turn of ``functionResponse`` parts named after the call they answer (Gemini matches responses to calls by
name and order, and wants all responses to a parallel call in one turn).
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError
from omniroute_translator.codecs.gemini._parts import (
    assistant_message,
    hub_part_to_gemini,
    media_to_hub,
    reasoning_parts,
    tool_call_to_part,
)

__all__ = ["contents_to_messages", "messages_to_contents", "system_to_message"]

_CALL_ID_PREFIX = "call_"


def _invalid(message: str, param: str) -> CodecError:
    return CodecError(hub_error(400, message, param=param))


def system_to_message(system: Any) -> dict[str, Any] | None:
    """``systemInstruction`` (a Content, or a bare string as some clients send) as a hub system message."""
    if isinstance(system, str):
        return {"role": "system", "content": system} if system else None
    if not isinstance(system, dict):
        raise _invalid("'systemInstruction' must be a Content object.", "systemInstruction")
    texts = [str(p.get("text")) for p in system.get("parts") or [] if isinstance(p, dict) and "text" in p]
    return {"role": "system", "content": "\n".join(texts)} if texts else None


def contents_to_messages(contents: Any) -> list[dict[str, Any]]:
    """Gemini ``contents`` as hub messages. Raises :class:`CodecError` (400) on a malformed turn."""
    if not isinstance(contents, list) or not contents:
        raise _invalid("'contents' must be a non-empty array.", "contents")
    messages: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []  # (name, id) of calls not answered yet
    n_calls = 0
    for i, turn in enumerate(contents):
        if not isinstance(turn, dict) or not isinstance(turn.get("parts"), list):
            raise _invalid(f"contents[{i}] must be an object with a 'parts' array.", f"contents[{i}]")
        role = turn.get("role") or "user"
        if role not in ("user", "model", "function"):
            raise _invalid(f"contents[{i}].role must be 'user' or 'model'; got {role!r}.", f"contents[{i}].role")
        parts = [p for p in turn["parts"] if isinstance(p, dict)]
        if role == "model":
            message = assistant_message(parts, n_calls, _CALL_ID_PREFIX)
            calls = message.get("tool_calls") or []
            n_calls += len(calls)
            pending += [(c["function"]["name"], c["id"]) for c in calls]
            messages.append(message)
        else:
            messages += _user_messages(parts, pending, i)
    return messages


def _user_messages(parts: list[dict[str, Any]], pending: list[tuple[str, str]], i: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        response = part.get("functionResponse")
        if isinstance(response, dict):
            out.append(_tool_message(response, pending, f"contents[{i}].parts[{j}]"))
            continue
        if isinstance(part.get("text"), str):
            content.append({"type": "text", "text": part["text"]})
            continue
        media = media_to_hub(part)
        if media is None:
            raise _invalid(f"contents[{i}].parts[{j}] has no supported data.", f"contents[{i}].parts[{j}]")
        content.append(media)
    if content:
        only_text = len(content) == 1 and content[0]["type"] == "text"
        out.append({"role": "user", "content": content[0]["text"] if only_text else content})
    return out


def _tool_message(response: dict[str, Any], pending: list[tuple[str, str]], param: str) -> dict[str, Any]:
    name = str(response.get("name") or "")
    call_id = response.get("id")
    match = next((k for k, (n, cid) in enumerate(pending) if (cid == call_id if call_id else n == name)), None)
    if match is not None:
        call_id = pending.pop(match)[1]
    if not call_id:
        raise _invalid(f"{param}: functionResponse {name!r} answers no earlier functionCall.", param)
    body = response.get("response")
    return {"role": "tool", "tool_call_id": str(call_id), "content": jsonx.dumps_str(body if body is not None else {})}


def messages_to_contents(messages: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Hub messages as (``contents``, ``systemInstruction`` or ``None``)."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system += [p for p in _content_parts(message.get("content")) if "text" in p]
        elif role == "tool":
            part = _response_part(message, names)
            if contents and contents[-1].get("_tool"):
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part], "_tool": True})
        elif role == "assistant":
            parts = reasoning_parts(message) + _content_parts(message.get("content"))
            for call in message.get("tool_calls") or []:
                call_part = tool_call_to_part(call)
                if call_part is not None:
                    names[str(call.get("id"))] = call_part["functionCall"]["name"]
                    parts.append(call_part)
            if isinstance(message.get("refusal"), str) and not message.get("content"):
                parts.append({"text": message["refusal"]})
            contents.append({"role": "model", "parts": parts or [{"text": ""}]})
        else:
            contents.append({"role": "user", "parts": _content_parts(message.get("content")) or [{"text": ""}]})
    for turn in contents:
        turn.pop("_tool", None)
    return contents, ({"parts": system} if system else None)


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        return []
    return [p for p in (hub_part_to_gemini(part) for part in content) if p is not None]


def _response_part(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    call_id = str(message.get("tool_call_id") or "")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    response: Any = None
    if isinstance(content, str):
        try:
            response = jsonx.loads(content)
        except jsonx.JSONDecodeError:
            response = None
    if not isinstance(response, dict):
        # Gemini wants an object; a plain-text tool result is wrapped the way Google's own SDK does
        response = {"result": content if content is not None else ""}
    name = names.get(call_id) or str(message.get("name") or "") or call_id
    return {"functionResponse": {"name": name, "response": response}}
