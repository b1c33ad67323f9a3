"""Anthropic Messages requests (``/v1/messages`` and ``/v1/messages/count_tokens`` bodies) → hub requests.

Mapping (the inverse is :mod:`.request_encode`):

- ``system`` (string, or text blocks with ``cache_control``) → a leading hub ``system`` message;
- user blocks ``text`` / ``image`` (base64 or url source) → hub parts ``text`` / ``image_url`` (data URL);
  ``document`` with a base64 source → a hub ``file`` part; ``cache_control`` is kept on parts;
- ``tool_result`` blocks → hub ``tool`` messages, in order (the user's other blocks around them stay a user
  message); ``is_error`` is dropped (no hub field);
- assistant ``tool_use`` → ``tool_calls`` (``input`` as a JSON string); ``thinking`` / ``redacted_thinking`` →
  ``reasoning_details`` kept intact with their signatures, plus the joined text as ``reasoning_content``;
- ``tools`` (``input_schema``) → function tools; ``tool_choice`` auto/any/tool/none → auto/required/function/none;
  ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``; ``stop_sequences`` → ``stop``;
  ``metadata.user_id`` → ``user``; ``thinking`` enabled/disabled → hub ``thinking`` (adaptive = enabled without a
  budget); ``output_config.effort`` → ``reasoning_effort``; ``output_config.format`` → ``response_format``;
- other top-level fields Anthropic has and the hub has not (``service_tier``, ``container``, …) go to
  ``x_passthrough.anthropic``; server tools (``web_search_…`` and other typed tools) are dropped.

``max_tokens`` is not required here, so a ``count_tokens`` body (the same shape without it) decodes too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, HubRequest

__all__ = ["PASSTHROUGH_KEY", "decode_request"]

PASSTHROUGH_KEY = "anthropic"
_SAME_NAME = ("model", "max_tokens", "temperature", "top_p", "top_k", "stream")
_MAPPED = frozenset(
    {
        *_SAME_NAME,
        "messages",
        "system",
        "tools",
        "tool_choice",
        "stop_sequences",
        "metadata",
        "thinking",
        "output_config",
    }
)
_EFFORTS: Mapping[str, str] = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def _invalid(message: str, param: str = "") -> CodecError:
    return CodecError(hub_error(400, message, param=param))


def decode_request(body: bytes) -> HubRequest:
    """Parse and validate a Messages body into a hub request. Raises :class:`CodecError` (400) when it is not a
    JSON object, names no model, has no non-empty ``messages`` list of user/assistant turns, or a block is
    malformed (no ``type``, a tool block without its id, an image without a usable source)."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise _invalid("The request body is not valid JSON.") from exc
    if not isinstance(doc, dict):
        raise _invalid("The request body must be a JSON object.")
    model = doc.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("model: Field required (a non-empty string).", "model")
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: must be a non-empty array.", "messages")
    if "stream" in doc and not isinstance(doc["stream"], bool):
        raise _invalid("stream: must be a boolean.", "stream")
    if "max_tokens" in doc and not (isinstance(doc["max_tokens"], int) and not isinstance(doc["max_tokens"], bool)):
        raise _invalid("max_tokens: must be an integer.", "max_tokens")
    hub: HubRequest = {key: doc[key] for key in _SAME_NAME if doc.get(key) is not None}
    hub["messages"] = _system(doc.get("system")) + [m for i, msg in enumerate(messages) for m in _message(msg, i)]
    _tools(doc, hub)
    if isinstance(doc.get("stop_sequences"), list) and doc["stop_sequences"]:
        hub["stop"] = list(doc["stop_sequences"])
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        hub["user"] = metadata["user_id"]
    _thinking(doc, hub)
    extra = {k: v for k, v in doc.items() if k not in _MAPPED}
    if extra:
        hub["x_passthrough"] = {PASSTHROUGH_KEY: extra}
    return hub


def _system(system: Any) -> list[dict[str, Any]]:
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if isinstance(system, list) and system:
        return [{"role": "system", "content": [_text_part(b, f"system[{i}]") for i, b in enumerate(system)]}]
    return []


def _text_part(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise _invalid(f"{where}: expected a text block.", where)
    return _with_cache({"type": "text", "text": block["text"]}, block)


def _with_cache(part: dict[str, Any], block: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def _message(message: Any, i: int) -> list[dict[str, Any]]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise _invalid(f"{where}: must be an object.", where)
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise _invalid(f"{where}.role: must be 'user' or 'assistant'; got {role!r}.", f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise _invalid(f"{where}.content: must be a string or an array of blocks.", f"{where}.content")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _invalid(f"{where}.content[{j}]: must be an object with a 'type'.", f"{where}.content[{j}]")
    return _assistant(content, where) if role == "assistant" else _user(content, where)


def _user(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """User blocks in order: runs of ordinary blocks become user messages, each tool_result a tool message."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        if block["type"] == "tool_result":
            if parts:
                out.append({"role": "user", "content": _plain(parts)})
                parts = []
            out.append(_tool_result(block, at))
        else:
            part = _user_part(block, at)
            if part is not None:
                parts.append(part)
    if parts or not out:
        out.append({"role": "user", "content": _plain(parts)})
    return out


def _plain(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text block without cache_control is the string shorthand (Anthropic treats both the same)."""
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        return str(parts[0]["text"])
    return parts


def _user_part(block: dict[str, Any], at: str) -> dict[str, Any] | None:
    kind = block["type"]
    if kind == "text":
        return _text_part(block, at)
    if kind == "image":
        return _with_cache({"type": "image_url", "image_url": {"url": _source_url(block.get("source"), at)}}, block)
    if kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str):
            return _with_cache({"type": "text", "text": source["data"]}, block)
        file: dict[str, Any] = {"file_data": _source_url(source, at)}
        if isinstance(block.get("title"), str):
            file["filename"] = block["title"]
        return _with_cache({"type": "file", "file": file}, block)
    if kind in ("thinking", "redacted_thinking"):
        return None  # only meaningful in assistant turns; Anthropic ignores them elsewhere
    raise _invalid(f"{at}: unsupported block type {kind!r} in a user message.", at)


def _source_url(source: Any, at: str) -> str:
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return f"data:{source.get('media_type') or 'application/octet-stream'};base64,{source['data']}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
    raise _invalid(f"{at}.source: expected a base64 or url source.", f"{at}.source")


def _tool_result(block: dict[str, Any], at: str) -> dict[str, Any]:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise _invalid(f"{at}.tool_use_id: Field required.", f"{at}.tool_use_id")
    content = block.get("content")
    if isinstance(content, list):
        parts = [p for k, b in enumerate(content) if (p := _user_part(_typed(b, f"{at}.content[{k}]"), at))]
        return {"role": "tool", "tool_call_id": tool_use_id, "content": parts}
    return {"role": "tool", "tool_call_id": tool_use_id, "content": content if isinstance(content, str) else ""}


def _typed(block: Any, at: str) -> dict[str, Any]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _invalid(f"{at}: must be an object with a 'type'.", at)
    return block


def _assistant(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        kind, at = block["type"], f"{where}.content[{j}]"
        if kind == "text":
            texts.append(_text_part(block, at))
        elif kind == "tool_use":
            calls.append(_tool_call(block, at))
        elif kind == "thinking":
            details.append({"type": "thinking", "thinking": str(block.get("thinking") or ""), **_sig(block)})
        elif kind == "redacted_thinking":
            details.append({"type": "redacted_thinking", "data": str(block.get("data") or "")})
        else:
            raise _invalid(f"{at}: unsupported block type {kind!r} in an assistant message.", at)
    message: dict[str, Any] = {"role": "assistant", "content": _assistant_content(texts)}
    if calls:
        message["tool_calls"] = calls
    reasoning = "".join(d.get("thinking", "") for d in details)
    if reasoning:
        message["reasoning_content"] = reasoning
    if details:
        message["reasoning_details"] = details
    return [message]


def _sig(block: Mapping[str, Any]) -> dict[str, str]:
    signature = block.get("signature")
    return {"signature": signature} if isinstance(signature, str) else {}


def _assistant_content(texts: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    if not texts:
        return None
    if any("cache_control" in t for t in texts):
        return texts
    return "".join(t["text"] for t in texts)


def _tool_call(block: dict[str, Any], at: str) -> dict[str, Any]:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise _invalid(f"{at}: a tool_use block needs an 'id' and a 'name'.", at)
    arguments = jsonx.dumps(block.get("input") or {}).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tools(doc: Mapping[str, Any], hub: HubRequest) -> None:
    tools = doc.get("tools")
    if isinstance(tools, list):
        out = []
        for tool in tools:
            # typed tools (web_search_…, bash_…, text_editor_…) run on Anthropic's side: no hub equivalent
            if isinstance(tool, dict) and tool.get("type") in (None, "custom") and isinstance(tool.get("name"), str):
                function: dict[str, Any] = {"name": tool["name"]}
                if isinstance(tool.get("description"), str):
                    function["description"] = tool["description"]
                function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
                if isinstance(tool.get("strict"), bool):
                    function["strict"] = tool["strict"]
                out.append({"type": "function", "function": function})
        if out:
            hub["tools"] = out
    choice = doc.get("tool_choice")
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind in ("auto", "any", "none"):
        hub["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    elif kind == "tool" and isinstance(choice.get("name"), str):
        hub["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    if choice.get("disable_parallel_tool_use") is True:
        hub["parallel_tool_calls"] = False


def _thinking(doc: Mapping[str, Any], hub: HubRequest) -> None:
    thinking = doc.get("thinking")
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        budget = thinking.get("budget_tokens")
        if kind == "enabled" and isinstance(budget, int):
            hub["thinking"] = {"type": "enabled", "budget_tokens": budget}
        elif kind in ("enabled", "adaptive"):
            hub["thinking"] = {"type": "enabled"}
        elif kind == "disabled":
            hub["thinking"] = {"type": "disabled"}
    config = doc.get("output_config")
    if not isinstance(config, dict):
        return
    effort = config.get("effort")
    if isinstance(effort, str) and effort in _EFFORTS:
        hub["reasoning_effort"] = _EFFORTS[effort]
    fmt = config.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        hub["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}
