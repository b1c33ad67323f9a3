"""OpenAI Responses requests (``POST /v1/responses`` bodies) → hub requests.

Mapping (the inverse is :mod:`.request_encode`):

- ``input`` a string → one user message; items in order: ``message`` (``role`` user/assistant/system/developer,
  content a string or parts) → a hub message; ``function_call`` → a tool call of the assistant message before it
  (or of a new one); ``function_call_output`` → a ``tool`` message; ``reasoning`` → ``reasoning_content`` (its
  summary texts joined by a blank line) of the next assistant message. ``encrypted_content`` is dropped: only the
  OpenAI account that issued it can read it, and a Responses provider gets the client's bytes untouched anyway.
- parts: ``input_text`` / ``output_text`` → ``text``; ``input_image`` with ``image_url`` → ``image_url``, with
  ``file_id`` → a ``file`` part (so a Responses provider gets it back as ``input_file``); ``input_file`` → a
  ``file`` part; ``refusal`` → the message's ``refusal``.
- ``instructions`` → a leading ``system`` message; ``tools`` (flat function tools) → hub function tools
  (built-in tools are dropped); ``tool_choice`` (``{type: function, name}`` → ``{type: function, function:
  {name}}``, ``allowed_tools`` → its mode); ``max_output_tokens`` → ``max_tokens``; ``text.format`` →
  ``response_format``; ``text.verbosity`` → ``verbosity``; ``reasoning.effort`` → ``reasoning_effort`` (``none`` →
  ``thinking: {type: disabled}``, ``xhigh`` → ``high``); ``reasoning.summary`` is dropped (summaries are always
  passed on when a provider sends reasoning).
- ``temperature``, ``top_p``, ``parallel_tool_calls``, ``stream``, ``metadata``, ``user``, ``safety_identifier``,
  ``prompt_cache_key``, ``service_tier`` keep their names; ``store`` is dropped (the gateway is stateless).
- Refused with a 400, because the gateway stores no responses or conversations: ``previous_response_id``,
  ``conversation``, ``background: true`` and ``item_reference`` input items.
- Other top-level fields (``truncation``, ``include``, ``max_tool_calls``, …) → ``x_passthrough.openai_responses``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, HubRequest
from omniroute_translator.codecs.openai_responses._common import obj, text

__all__ = ["PASSTHROUGH_KEY", "decode_request"]

PASSTHROUGH_KEY = "openai_responses"
SAME_NAME = (
    "model",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "stream",
    "metadata",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "service_tier",
)
_MAPPED = frozenset(
    {*SAME_NAME, "input", "instructions", "tools", "tool_choice", "max_output_tokens", "text", "reasoning", "store"}
)
_STATEFUL = ("previous_response_id", "conversation")
_ROLES = frozenset({"user", "assistant", "system", "developer"})
_EFFORTS: Mapping[str, str] = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


def _invalid(message: str, param: str = "") -> CodecError:
    return CodecError(hub_error(400, message, param=param))


def decode_request(body: bytes) -> HubRequest:
    """Parse and validate a Responses body into a hub request. Raises :class:`CodecError` (400) when it is not a
    JSON object, names no model, has no input, an item or part is malformed, or it needs stored state
    (``previous_response_id``, ``conversation``, ``background``, ``item_reference``)."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise _invalid("The request body is not valid JSON.") from exc
    if not isinstance(doc, dict):
        raise _invalid("The request body must be a JSON object.")
    model = doc.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("You must provide a model parameter (a non-empty string).", "model")
    for key in _STATEFUL:
        if doc.get(key) is not None:
            raise _invalid(f"'{key}' is not supported: this gateway does not store responses or conversations.", key)
    if doc.get("background") is True:
        raise _invalid("'background' is not supported: this gateway does not store responses.", "background")
    if "stream" in doc and not isinstance(doc["stream"], bool):
        raise _invalid("'stream' must be a boolean.", "stream")
    hub: HubRequest = {key: doc[key] for key in SAME_NAME if doc.get(key) is not None}
    instructions = doc.get("instructions")
    system = [{"role": "system", "content": instructions}] if isinstance(instructions, str) and instructions else []
    hub["messages"] = system + _input(doc.get("input"))
    max_tokens = doc.get("max_output_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        hub["max_tokens"] = max_tokens
    _tools(doc, hub)
    _text(obj(doc.get("text")), hub)
    _reasoning(obj(doc.get("reasoning")), hub)
    extra = {k: v for k, v in doc.items() if k not in _MAPPED and k not in _STATEFUL and k != "background"}
    if extra:
        hub["x_passthrough"] = {PASSTHROUGH_KEY: extra}
    return hub


def _input(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise _invalid("'input' must be a string or a non-empty array of items.", "input")
    messages: list[dict[str, Any]] = []
    reasoning: list[str] = []  # reasoning items waiting for the assistant turn they belong to
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _invalid(f"{where} must be an object.", where)
        kind = item.get("type", "message")
        if kind == "message":
            message = _message(item, where)
            if message["role"] == "assistant" and reasoning:
                message = {**message, "reasoning_content": "\n\n".join(reasoning)}
                reasoning = []
            messages.append(message)
        elif kind == "reasoning":
            summary = item.get("summary")
            pieces = summary if isinstance(summary, list) else []
            reasoning.append("\n\n".join(text(obj(s).get("text")) for s in pieces))
        elif kind == "function_call":
            call = _call(item, where)
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant" or reasoning:
                last = {"role": "assistant", "content": None}
                if reasoning:
                    last["reasoning_content"] = "\n\n".join(reasoning)
                    reasoning = []
                messages.append(last)
            last["tool_calls"] = [*last.get("tool_calls", []), call]
        elif kind == "function_call_output":
            messages.append(_call_output(item, where))
        elif kind == "item_reference":
            raise _invalid(f"{where}: item references are not supported: this gateway stores no items.", where)
        # built-in tool calls and their outputs (web_search_call, …) have no hub form: dropped
    if reasoning:
        messages.append({"role": "assistant", "content": None, "reasoning_content": "\n\n".join(reasoning)})
    if not messages:
        raise _invalid("'input' has no message, function call or function call output.", "input")
    return messages


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise _invalid(f"{where}.role must be one of {', '.join(sorted(_ROLES))}; got {role!r}.", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _invalid(f"{where}.content must be a string or an array of parts.", f"{where}.content")
    parts: list[dict[str, Any]] = []
    refusal = ""
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _invalid(f"{at} must be an object with a 'type'.", at)
        if part["type"] == "refusal":
            refusal += text(part.get("refusal"))
        else:
            parts.append(_part(part, at))
    message: dict[str, Any] = {"role": role, "content": parts if parts or not refusal else None}
    if refusal:
        message["refusal"] = refusal
    return message


def _part(part: dict[str, Any], at: str) -> dict[str, Any]:
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            raise _invalid(f"{at}.text must be a string.", f"{at}.text")
        return {"type": "text", "text": part["text"]}
    if kind == "input_image":
        if isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            return {"type": "image_url", "image_url": image}
        if isinstance(part.get("file_id"), str):
            return {"type": "file", "file": {"file_id": part["file_id"]}}
        raise _invalid(f"{at}: an input_image needs an image_url or a file_id.", at)
    if kind == "input_file":
        file = {k: part[k] for k in ("file_id", "file_data", "file_url", "filename") if isinstance(part.get(k), str)}
        if not file.keys() - {"filename"}:
            raise _invalid(f"{at}: an input_file needs a file_id, file_data or file_url.", at)
        return {"type": "file", "file": file}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": obj(part.get("input_audio"))}
    raise _invalid(f"{at}: content type {kind!r} is not supported.", f"{at}.type")


def _call(item: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("call_id", "name", "arguments"):
        if not isinstance(item.get(key), str):
            raise _invalid(f"{where}.{key} must be a string.", f"{where}.{key}")
    function = {"name": item["name"], "arguments": item["arguments"]}
    return {"id": item["call_id"], "type": "function", "function": function}


def _call_output(item: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(item.get("call_id"), str):
        raise _invalid(f"{where}.call_id must be a string.", f"{where}.call_id")
    output = item.get("output")
    if isinstance(output, list):
        parts = [_part(p, f"{where}.output[{j}]") for j, p in enumerate(output) if isinstance(p, dict) and "type" in p]
        return {"role": "tool", "tool_call_id": item["call_id"], "content": parts}
    return {"role": "tool", "tool_call_id": item["call_id"], "content": output if isinstance(output, str) else ""}


def _tools(doc: dict[str, Any], hub: HubRequest) -> None:
    tools = doc.get("tools")
    functions = [t for t in tools if isinstance(t, dict) and t.get("type") == "function"] if tools else []
    if functions:
        hub["tools"] = [
            {
                "type": "function",
                "function": {k: t[k] for k in ("name", "description", "parameters", "strict") if t.get(k) is not None},
            }
            for t in functions
        ]
    choice = doc.get("tool_choice")
    if choice in ("auto", "none", "required"):
        hub["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        hub["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif (
        isinstance(choice, dict)
        and choice.get("type") == "allowed_tools"
        and choice.get("mode") in ("auto", "required")
    ):
        hub["tool_choice"] = choice["mode"]


def _text(config: dict[str, Any], hub: HubRequest) -> None:
    fmt = obj(config.get("format"))
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        hub["response_format"] = {"type": kind}
    elif kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict") if fmt.get(k) is not None}
        hub["response_format"] = {"type": "json_schema", "json_schema": schema}
    if isinstance(config.get("verbosity"), str):
        hub["verbosity"] = config["verbosity"]


def _reasoning(config: dict[str, Any], hub: HubRequest) -> None:
    effort = config.get("effort")
    if effort == "none":
        hub["thinking"] = {"type": "disabled"}
    elif isinstance(effort, str) and effort in _EFFORTS:
        hub["reasoning_effort"] = _EFFORTS[effort]
