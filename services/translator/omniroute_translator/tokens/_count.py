"""Counting a hub request's input tokens with a family's rules. Pure: the tokenizer is passed in.

What is counted (OpenAI's cookbook accounting, see :mod:`._families`):

- every message: ``per_message`` + its role + its text (string content, ``text`` and ``refusal`` parts) + its
  ``name`` (+ ``per_name``); assistant ``tool_calls`` count their function name and argument text; images are
  ``image_tokens`` each (``image_tokens_low`` for ``detail: low``), audio and documents without readable text
  ``file_tokens`` each; prior-turn ``reasoning_content`` is not counted (Anthropic and OpenAI drop earlier
  turns' reasoning from the prompt);
- the reply priming once;
- tools: per function ``func_init`` + ``name:description``; per property ``prop_key`` + ``name:type:description``
  (enums: ``enum_init`` + ``enum_item`` and the item text each; nested schemas: their compact JSON); once
  ``prop_init`` per function with properties and ``func_end`` per request with tools;
- a ``response_format`` JSON schema: its compact JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_translator.codecs.base import HubRequest
from omniroute_translator.tokens._families import Family

__all__ = ["TextCounter", "count_request"]

TextCounter = Callable[[str], int]
_PROPERTY_KEYS = frozenset({"type", "description", "enum"})


def count_request(hub: HubRequest, family: Family, count: TextCounter) -> int:
    """The input tokens of ``hub`` (a validated hub request) for ``family``, with ``count`` tokenizing text."""
    total = family.reply_priming
    for message in hub.get("messages") or ():
        if isinstance(message, Mapping):
            total += _message(message, family, count)
    tools = [t for t in hub.get("tools") or () if isinstance(t, Mapping)]
    if tools:
        total += sum(_tool(t, family, count) for t in tools) + family.func_end
    fmt = hub.get("response_format")
    if isinstance(fmt, Mapping) and isinstance(fmt.get("json_schema"), Mapping):
        schema = fmt["json_schema"].get("schema")
        if schema is not None:
            total += count(_compact(schema))
    return total


def _message(message: Mapping[str, Any], family: Family, count: TextCounter) -> int:
    total = family.per_message + count(str(message.get("role") or ""))
    name = message.get("name")
    if isinstance(name, str) and name:
        total += count(name) + family.per_name
    total += _content(message.get("content"), family, count)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            total += count(str(function.get("name") or "")) + count(str(function.get("arguments") or ""))
    return total


def _content(content: Any, family: Family, count: TextCounter) -> int:
    if isinstance(content, str):
        return count(content)
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text":
            total += count(str(part.get("text") or ""))
        elif kind == "refusal":
            total += count(str(part.get("refusal") or ""))
        elif kind == "image_url":
            image = part.get("image_url")
            low = isinstance(image, Mapping) and image.get("detail") == "low"
            total += family.image_tokens_low if low else family.image_tokens
        elif kind in ("input_audio", "file"):
            total += family.file_tokens
    return total


def _tool(tool: Mapping[str, Any], family: Family, count: TextCounter) -> int:
    function = tool.get("function")
    if not isinstance(function, Mapping):
        return 0
    description = str(function.get("description") or "").removesuffix(".")
    total = family.func_init + count(f"{function.get('name') or ''}:{description}")
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    if isinstance(properties, Mapping) and properties:
        total += family.prop_init
        for key, spec in properties.items():
            total += family.prop_key + _property(str(key), spec, family, count)
    return total


def _property(name: str, spec: Any, family: Family, count: TextCounter) -> int:
    if not isinstance(spec, Mapping):
        return count(name)
    total = 0
    enum = spec.get("enum")
    if isinstance(enum, list):
        total += family.enum_init
        for item in enum:
            total += family.enum_item + count(item if isinstance(item, str) else _compact(item))
    kind = spec.get("type")
    kind_text = kind if isinstance(kind, str) else _compact(kind) if kind is not None else ""
    description = str(spec.get("description") or "").removesuffix(".")
    total += count(f"{name}:{kind_text}:{description}")
    rest = {k: v for k, v in spec.items() if k not in _PROPERTY_KEYS}
    if rest:  # nested objects, items, formats: the cookbook's formula has no rule, their JSON text is a fair bound
        total += count(_compact(rest))
    return total


def _compact(value: Any) -> str:
    return jsonx.dumps_str(value)
