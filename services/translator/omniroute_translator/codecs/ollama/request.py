"""Ollama ``/api/chat`` request bodies ↔ hub requests.

Ollama streams unless told not to: a body without ``stream`` decodes to hub ``stream: true``, and an encoded
body always says ``stream`` explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, HubRequest
from omniroute_translator.codecs.ollama._messages import decode_messages, encode_messages, obj

__all__ = ["decode_request", "encode_request"]

PASSTHROUGH_KEY = "ollama"
# options with a hub field: Ollama name -> hub name (num_predict is handled apart: -1 and -2 mean "no limit")
_OPTION_TO_HUB: Mapping[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_KNOWN_TOP = frozenset({"model", "messages", "tools", "format", "options", "stream", "think"})
_EFFORTS = frozenset({"low", "medium", "high"})


def _invalid(message: str, param: str) -> CodecError:
    return CodecError(hub_error(400, message, param=param))


def decode_request(body: bytes) -> HubRequest:
    """Parse and validate an ``/api/chat`` body. Raises :class:`CodecError` (400) when it is not a JSON object,
    names no model, or has no valid ``messages`` (an empty list, Ollama's "load the model" call, has no meaning
    for another provider). ``keep_alive``, unknown options and other Ollama-only fields go to
    ``x_passthrough.ollama``."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise _invalid("The request body is not valid JSON.", "") from exc
    if not isinstance(doc, dict):
        raise _invalid("The request body must be a JSON object.", "")
    model = doc.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("You must provide a model parameter (a non-empty string).", "model")
    if "stream" in doc and not isinstance(doc["stream"], bool):
        raise _invalid("'stream' must be a boolean.", "stream")
    hub: dict[str, Any] = {"model": model, "messages": decode_messages(doc.get("messages"))}
    hub["stream"] = doc.get("stream", True)
    tools = doc.get("tools")
    if isinstance(tools, list) and tools:
        hub["tools"] = [{"type": "function", "function": obj(obj(t).get("function"))} for t in tools]
    fmt = doc.get("format")
    if fmt == "json":
        hub["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        hub["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": fmt}}
    passthrough: dict[str, Any] = {k: v for k, v in doc.items() if k not in _KNOWN_TOP}
    rest = _decode_options(doc.get("options"), hub)
    if rest:
        passthrough["options"] = rest
    think = doc.get("think")
    if think is True:
        hub["thinking"] = {"type": "enabled"}
    elif think is False:
        hub["thinking"] = {"type": "disabled"}
    elif isinstance(think, str) and think in _EFFORTS:
        hub["reasoning_effort"] = think
    if passthrough:
        hub["x_passthrough"] = {PASSTHROUGH_KEY: passthrough}
    return hub


def _decode_options(options: Any, hub: dict[str, Any]) -> dict[str, Any]:
    """Options with a hub field into ``hub``; returns the rest (kept for an Ollama provider)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise _invalid("'options' must be an object.", "options")
    rest: dict[str, Any] = {}
    for key, value in options.items():
        if key in _OPTION_TO_HUB:
            hub[_OPTION_TO_HUB[key]] = value
        elif key == "num_predict":
            if isinstance(value, int) and value >= 0:
                hub["max_tokens"] = value
        elif key == "stop":
            if isinstance(value, list) and value:
                hub["stop"] = value
            elif isinstance(value, str):
                hub["stop"] = [value]
        else:
            rest[key] = value
    return rest


def encode_request(hub: HubRequest, model: str) -> bytes:
    """A hub request as an ``/api/chat`` body for ``model`` with an explicit ``stream``.

    Dropped (README table): ``tool_choice`` other than ``none`` (``none`` omits the tools, which means the same),
    ``n``, ``parallel_tool_calls``, ``user``, ``logprobs``, ``stream_options``, http image URLs, audio and file
    parts, ``reasoning_details``, ``cache_control``. ``x_passthrough.ollama`` is merged last (``options`` key by key).
    """
    body: dict[str, Any] = {"model": model, "messages": encode_messages(hub.get("messages"))}
    tools = hub.get("tools")
    if isinstance(tools, list) and tools and hub.get("tool_choice") != "none":
        body["tools"] = tools
    response_format = obj(hub.get("response_format"))
    if response_format.get("type") == "json_object":
        body["format"] = "json"
    elif response_format.get("type") == "json_schema":
        schema = obj(response_format.get("json_schema")).get("schema")
        body["format"] = schema if isinstance(schema, dict) else "json"
    options = {key: hub[hub_key] for key, hub_key in _OPTION_TO_HUB.items() if hub.get(hub_key) is not None}
    max_tokens = hub.get("max_completion_tokens", hub.get("max_tokens"))
    if isinstance(max_tokens, int):
        options["num_predict"] = max_tokens
    stop = hub.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list) and stop:
        options["stop"] = stop
    if options:
        body["options"] = options
    body["stream"] = hub.get("stream") is True
    thinking = obj(hub.get("thinking"))
    if thinking.get("type") in ("enabled", "disabled"):
        body["think"] = thinking["type"] == "enabled"
    elif hub.get("reasoning_effort") in _EFFORTS:
        body["think"] = hub["reasoning_effort"]
    elif hub.get("reasoning_effort") == "minimal":
        body["think"] = "low"
    extra = obj(obj(hub.get("x_passthrough")).get(PASSTHROUGH_KEY))
    for key, value in extra.items():
        if key == "options" and isinstance(value, dict):
            body["options"] = {**body.get("options", {}), **value}
        else:
            body[key] = value
    return jsonx.dumps(body)
