"""Hub requests → Anthropic Messages bodies (what we send to ``api.anthropic.com/v1/messages``).

The inverse of :mod:`.request`, plus what only a hub request can say:

- every ``system`` / ``developer`` message, wherever it is, joins the top-level ``system`` (Anthropic has no
  mid-conversation system turn); a string when no part carries ``cache_control``, else text blocks;
- ``tool`` messages become ``tool_result`` blocks; consecutive tool messages and the user message right after
  them form one user turn (parallel results must answer in one turn);
- ``image_url`` data URLs → base64 sources, other URLs → url sources; ``file`` parts with a data URL →
  ``document`` blocks; ``input_audio`` has no Anthropic equivalent: 400;
- ``reasoning_details`` on assistant messages → ``thinking`` / ``redacted_thinking`` blocks with their
  signatures, first in the turn; a bare ``reasoning_content`` (no signature) is dropped (Anthropic rejects
  unsigned thinking);
- ``max_tokens`` ← ``max_tokens`` or ``max_completion_tokens``, else :data:`DEFAULT_MAX_TOKENS` (Anthropic
  requires it; raised above a thinking budget, which must be smaller);
- ``thinking`` → ``thinking`` (enabled without a budget → ``adaptive``); else ``reasoning_effort`` → a budget
  (low 1024, medium 2048, high 4096; minimal → none);
- with thinking on, ``temperature`` (unless 1), ``top_k`` and ``top_p`` < 0.95 are dropped, and forced tool use
  (``tool_choice`` required/function) drops the thinking instead, as Anthropic accepts neither combination;
- ``response_format`` json_schema → ``output_config.format``; ``n`` > 1 is refused (400);
- ``x_passthrough.anthropic`` is merged in last. Dropped fields are listed in the README.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.anthropic_messages._util import obj
from omniroute_translator.codecs.anthropic_messages.request import PASSTHROUGH_KEY
from omniroute_translator.codecs.base import CodecError, HubRequest

__all__ = ["DEFAULT_MAX_TOKENS", "MIN_BUDGET_TOKENS", "arguments_object", "encode_request"]

DEFAULT_MAX_TOKENS = 4096
# Anthropic rejects a thinking budget below 1024 tokens; a smaller hub budget (e.g. from Gemini) is raised to it.
MIN_BUDGET_TOKENS = 1024
_BUDGET_BY_EFFORT: Mapping[str, int] = {"low": 1024, "medium": 2048, "high": 4096}
_SAME_NAME = ("temperature", "top_p", "top_k", "stream")
_MIN_TOP_P_WITH_THINKING = 0.95


def _refuse(message: str, param: str) -> CodecError:
    return CodecError(hub_error(400, message, param=param))


def encode_request(hub: HubRequest, model: str) -> bytes:
    """A hub request as a Messages body naming ``model``. Raises :class:`CodecError` (400) for what Anthropic
    cannot serve and the client requires: ``n`` > 1, audio input."""
    n = hub.get("n")
    if isinstance(n, int) and n > 1:
        raise _refuse("Anthropic models return one choice per request; 'n' greater than 1 is not supported.", "n")
    body: dict[str, Any] = {"model": model}
    messages = hub.get("messages")
    system, turns = _split(messages if isinstance(messages, list) else [])
    body["max_tokens"] = _max_tokens(hub)
    body["messages"] = turns
    if system:
        body["system"] = system
    for key in _SAME_NAME:
        if hub.get(key) is not None:
            body[key] = hub[key]
    stop = hub.get("stop")
    if isinstance(stop, str) and stop:
        body["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        body["stop_sequences"] = stop
    _tools(hub, body)
    if isinstance(hub.get("user"), str) and hub["user"]:
        body["metadata"] = {"user_id": hub["user"]}
    thinking = _fit_budget(_thinking(hub), body, explicit=bool(_explicit_max(hub)))
    if thinking:
        _with_thinking(body, thinking)
    fmt = hub.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = obj(fmt.get("json_schema"))
        schema = spec.get("schema") if isinstance(spec.get("schema"), dict) else {"type": "object"}
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    passthrough = hub.get("x_passthrough")
    if isinstance(passthrough, dict) and isinstance(passthrough.get(PASSTHROUGH_KEY), dict):
        body.update(passthrough[PASSTHROUGH_KEY])
    return jsonx.dumps(body)


def _explicit_max(hub: HubRequest) -> int:
    for key in ("max_tokens", "max_completion_tokens"):
        value = hub.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def _max_tokens(hub: HubRequest) -> int:
    return _explicit_max(hub) or DEFAULT_MAX_TOKENS


def _split(messages: list[Any]) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system += _text_blocks(message.get("content"), f"messages[{i}]")
        elif role == "assistant":
            turns.append({"role": "assistant", "content": _assistant(message, i)})
        elif role == "tool":
            _append_user(turns, [_tool_result(message, i)], tool=True)
        else:
            _append_user(turns, _user_blocks(message.get("content"), f"messages[{i}]"), tool=False)
    if system and not any("cache_control" in b for b in system):
        return "\n\n".join(b["text"] for b in system), turns
    return system, turns


def _append_user(turns: list[dict[str, Any]], blocks: list[dict[str, Any]], *, tool: bool) -> None:
    """Tool results join a user turn that holds only tool results; a user message joins right after them."""
    last = turns[-1] if turns else None
    if (
        last is not None
        and last["role"] == "user"
        and isinstance(last["content"], list)
        and last["content"]
        and all(b.get("type") == "tool_result" for b in last["content"])
    ):
        last["content"] += blocks
        return
    if not tool and len(blocks) == 1 and blocks[0]["type"] == "text" and "cache_control" not in blocks[0]:
        turns.append({"role": "user", "content": blocks[0]["text"]})
        return
    turns.append({"role": "user", "content": blocks})


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in _user_blocks(content, where) if b["type"] == "text"]


def _cache(block: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append(_cache({"type": "text", "text": part["text"]}, part))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(_cache({"type": "image", "source": _source(str(url or ""))}, part))
        elif kind == "file":
            blocks.append(_cache(_document(part, f"{where}.content[{j}]"), part))
        elif kind == "input_audio":
            raise _refuse("Anthropic models do not accept audio input.", f"{where}.content[{j}]")
    return blocks


def _source(url: str) -> dict[str, str]:
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[len("data:") :].partition(";base64,")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _document(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    file = obj(part.get("file"))
    data = file.get("file_data")
    if not isinstance(data, str) or not data:
        raise _refuse("A file part needs inline 'file_data' (a data URL) for Anthropic.", where)
    block: dict[str, Any] = {"type": "document", "source": _source(data)}
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _tool_result(message: Mapping[str, Any], i: int) -> dict[str, Any]:
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id") or "")}
    if isinstance(content, list):
        block["content"] = _user_blocks(content, f"messages[{i}]")
    else:
        block["content"] = content if isinstance(content, str) else ""
    return block


def _assistant(message: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    details = message.get("reasoning_details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        if detail.get("type") == "thinking" and isinstance(detail.get("signature"), str):
            blocks.append(
                {"type": "thinking", "thinking": str(detail.get("thinking") or ""), "signature": detail["signature"]}
            )
        elif detail.get("type") == "redacted_thinking" and isinstance(detail.get("data"), str):
            blocks.append({"type": "redacted_thinking", "data": detail["data"]})
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    else:
        blocks += _text_blocks(content, f"messages[{i}]")
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


def arguments_object(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments (a JSON string in the hub) as the object Anthropic wants; anything that is not a JSON
    object (a model's malformed output) is wrapped so it is not lost."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = jsonx.loads(arguments)
    except jsonx.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def _tools(hub: HubRequest, body: dict[str, Any]) -> None:
    tools = []
    for tool in hub.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        out: dict[str, Any] = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            out["description"] = function["description"]
        out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
        if isinstance(function.get("strict"), bool):
            out["strict"] = function["strict"]
        tools.append(out)
    if tools:
        body["tools"] = tools
    choice = hub.get("tool_choice")
    out_choice: dict[str, Any] | None = None
    if choice in ("auto", "none"):
        out_choice = {"type": choice}
    elif choice == "required":
        out_choice = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out_choice = {"type": "tool", "name": str(choice["function"].get("name") or "")}
    if hub.get("parallel_tool_calls") is False and tools:
        out_choice = out_choice or {"type": "auto"}
        if out_choice["type"] != "none":
            out_choice["disable_parallel_tool_use"] = True
    if out_choice is not None and (tools or out_choice["type"] == "none"):
        body["tool_choice"] = out_choice


def _with_thinking(body: dict[str, Any], thinking: dict[str, Any]) -> None:
    """Anthropic rejects thinking together with forced tool use (``tool_choice`` any/tool), a temperature other
    than 1, ``top_k``, or ``top_p`` below 0.95. A forced tool call is what the client requires, so thinking yields
    to it; otherwise thinking stays and the sampling settings it excludes are dropped."""
    if thinking["type"] != "disabled":
        if body.get("tool_choice", {}).get("type") in ("any", "tool"):
            return
        if body.get("temperature") != 1:
            body.pop("temperature", None)
        body.pop("top_k", None)
        top_p = body.get("top_p")
        if isinstance(top_p, int | float) and top_p < _MIN_TOP_P_WITH_THINKING:
            del body["top_p"]
    body["thinking"] = thinking


def _fit_budget(thinking: dict[str, Any] | None, body: dict[str, Any], *, explicit: bool) -> dict[str, Any] | None:
    """Anthropic needs ``budget_tokens < max_tokens``. A defaulted max_tokens grows above the budget; an explicit
    one is the client's cap on all output (OpenAI's max_completion_tokens includes reasoning too), so the budget
    shrinks to half of it, and thinking is left out when even the minimum budget does not fit."""
    budget = thinking.get("budget_tokens") if thinking else None
    if thinking is None or not isinstance(budget, int) or budget < body["max_tokens"]:
        return thinking
    if not explicit:
        body["max_tokens"] = budget + DEFAULT_MAX_TOKENS
        return thinking
    smaller = max(MIN_BUDGET_TOKENS, body["max_tokens"] // 2)
    return {**thinking, "budget_tokens": smaller} if smaller < body["max_tokens"] else None


def _thinking(hub: HubRequest) -> dict[str, Any] | None:
    thinking = hub.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            return {"type": "disabled"}
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if isinstance(budget, int) and budget > 0:
                return {"type": "enabled", "budget_tokens": max(budget, MIN_BUDGET_TOKENS)}
            return {"type": "adaptive"}
    effort = hub.get("reasoning_effort")
    if isinstance(effort, str) and effort in _BUDGET_BY_EFFORT:
        return {"type": "enabled", "budget_tokens": _BUDGET_BY_EFFORT[effort]}
    return None
