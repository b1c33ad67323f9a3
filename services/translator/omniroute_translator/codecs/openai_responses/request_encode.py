"""Hub requests → OpenAI Responses request bodies (for a provider that speaks ``/v1/responses``).

- A leading ``system`` message with string content → ``instructions``; other messages → ``input`` items in order:
  ``message`` items (content a string, or parts: ``text`` → ``input_text``, ``image_url`` → ``input_image``,
  ``file`` → ``input_file``, ``input_audio`` as is); an assistant's content is its text as one string (its
  refusal when it has no text: OpenAI's input schema takes assistant text without item ids only as a string), its
  ``tool_calls`` → ``function_call`` items after it; ``tool`` messages → ``function_call_output`` items.
- ``tools`` → flat function tools (``strict`` defaults to ``false``: the Responses API would otherwise enforce
  strict schemas that a Chat client never asked for); ``tool_choice`` → ``{type: function, name}``;
  ``max_completion_tokens`` / ``max_tokens`` → ``max_output_tokens``; ``response_format`` → ``text.format``;
  ``verbosity`` → ``text.verbosity``; ``reasoning_effort`` (or a ``thinking`` budget, as for Chat) →
  ``reasoning.effort``; ``thinking: disabled`` → ``reasoning.effort: none``; ``stop`` becomes a 400
  (Responses has no stop sequences, and ignoring them would return text the client asked to cut).
- ``store: false``: the gateway is stateless and never reads a stored response back.
- Dropped: ``reasoning_content`` / ``reasoning_details`` (a reasoning item needs an id or ``encrypted_content``
  issued by OpenAI), ``top_k``, ``seed``, penalties, ``logit_bias``, ``logprobs``, ``n`` = 1,
  ``stream_options`` (usage is always in ``response.completed``), ``cache_control``, message ``name``;
  ``n`` > 1 is a 400. ``x_passthrough.openai_responses`` is merged in last.
"""

from __future__ import annotations

from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, HubRequest
from omniroute_translator.codecs.openai_responses._common import obj, text
from omniroute_translator.codecs.openai_responses.request import PASSTHROUGH_KEY, SAME_NAME

__all__ = ["encode_request"]


def encode_request(hub: HubRequest, model: str) -> bytes:
    """A hub request as a Responses body for ``model``; see the module docstring. Raises :class:`CodecError` (400)
    for what Responses cannot honour: ``n`` > 1 and stop sequences."""
    if isinstance(hub.get("n"), int) and hub["n"] > 1:
        raise CodecError(hub_error(400, "'n' > 1 is not supported by the Responses API provider.", param="n"))
    if hub.get("stop"):
        raise CodecError(
            hub_error(400, "Stop sequences are not supported by the Responses API provider.", param="stop")
        )
    body: dict[str, Any] = {"model": model}
    messages = [m for m in hub.get("messages") or [] if isinstance(m, dict)]
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        body["instructions"] = messages[0]["content"]
        messages = messages[1:]
    body["input"] = [item for message in messages for item in _items(message)]
    for key in SAME_NAME:
        if key != "model" and hub.get(key) is not None:
            body[key] = hub[key]
    max_tokens = hub.get("max_completion_tokens", hub.get("max_tokens"))
    if isinstance(max_tokens, int):
        body["max_output_tokens"] = max_tokens
    _tools(hub, body)
    text_config = _text_config(hub)
    if text_config:
        body["text"] = text_config
    effort = _effort(hub)
    if effort:
        body["reasoning"] = {"effort": effort}
    body["store"] = False
    body.update(obj(obj(hub.get("x_passthrough")).get(PASSTHROUGH_KEY)))
    return jsonx.dumps(body)


def _items(message: dict[str, Any]) -> list[dict[str, Any]]:
    role = message.get("role")
    if role == "tool":
        content = message.get("content")
        output: Any = [_part(p) for p in content if isinstance(p, dict)] if isinstance(content, list) else None
        if output is None:
            output = content if isinstance(content, str) else ""
        return [{"type": "function_call_output", "call_id": text(message.get("tool_call_id")), "output": output}]
    items: list[dict[str, Any]] = []
    content = message.get("content")
    if role == "assistant":
        # OpenAI's input schema types an assistant message without an item id as text only (a string)
        said = _joined_text(content) or text(message.get("refusal"))
        if said:
            items.append({"type": "message", "role": role, "content": said})
    elif isinstance(content, list) and content:
        parts = [_part(p) for p in content if isinstance(p, dict)]
        items.append({"type": "message", "role": role, "content": parts})
    elif isinstance(content, str) and content:
        items.append({"type": "message", "role": role, "content": content})
    for call in message.get("tool_calls") or []:
        function = obj(obj(call).get("function"))
        items.append(
            {
                "type": "function_call",
                "call_id": text(obj(call).get("id")),
                "name": text(function.get("name")),
                "arguments": text(function.get("arguments")),
            }
        )
    if role != "assistant" and not items:
        items.append({"type": "message", "role": role, "content": ""})
    return items


def _joined_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(text(obj(p).get("text")) for p in content if obj(p).get("type") == "text")
    return text(content)


def _part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": text(part.get("text"))}
    if kind == "image_url":
        image = obj(part.get("image_url"))
        return {"type": "input_image", "image_url": text(image.get("url")), "detail": image.get("detail") or "auto"}
    if kind == "file":
        file = obj(part.get("file"))
        return {"type": "input_file", **{k: v for k, v in file.items() if k != "mime_type"}}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": obj(part.get("input_audio"))}
    return {k: v for k, v in part.items() if k != "cache_control"}


def _tools(hub: HubRequest, body: dict[str, Any]) -> None:
    tools = hub.get("tools")
    if isinstance(tools, list) and tools:
        body["tools"] = [_tool(obj(obj(t).get("function"))) for t in tools if obj(t).get("type") == "function"]
    choice = hub.get("tool_choice")
    if choice in ("auto", "none", "required"):
        body["tool_choice"] = choice
    elif isinstance(choice, dict) and isinstance(obj(choice.get("function")).get("name"), str):
        body["tool_choice"] = {"type": "function", "name": choice["function"]["name"]}


def _tool(function: dict[str, Any]) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "function", "name": text(function.get("name"))}
    if isinstance(function.get("description"), str):
        tool["description"] = function["description"]
    tool["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
    tool["strict"] = function.get("strict") is True
    return tool


def _text_config(hub: HubRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    fmt = obj(hub.get("response_format"))
    if fmt.get("type") in ("text", "json_object"):
        config["format"] = {"type": fmt["type"]}
    elif fmt.get("type") == "json_schema":
        schema = obj(fmt.get("json_schema"))
        config["format"] = {
            "type": "json_schema",
            "name": text(schema.get("name")) or "response",
            **{k: schema[k] for k in ("description", "schema", "strict") if schema.get(k) is not None},
        }
    if isinstance(hub.get("verbosity"), str):
        config["verbosity"] = hub["verbosity"]
    return config


def _effort(hub: HubRequest) -> str:
    effort = hub.get("reasoning_effort")
    if isinstance(effort, str) and effort:
        return effort
    thinking = obj(hub.get("thinking"))
    if thinking.get("type") == "disabled":
        return "none"
    if thinking.get("type") != "enabled":
        return ""
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget <= 0:
        return "medium"
    return "low" if budget <= 1024 else "medium" if budget <= 2048 else "high"
