"""Gemini ``generateContent`` request bodies ↔ hub requests.

The model and the stream flag are not in a Gemini body: they are in the URL
(``/v1beta/models/{model}:generateContent`` or ``:streamGenerateContent?alt=sse``). So:

- ``decode_request`` returns a hub request **without** ``model`` and ``stream`` unless the body carries the
  top-level keys ``model`` / ``stream``, which the server may splice in from the path (they are not Gemini
  fields and are never sent to Gemini). Otherwise the caller supplies the model (``TranslateRequestIn.model``)
  and knows from the path whether to stream.
- ``encode_request`` never writes ``model`` or ``stream`` into the body: the caller builds the URL from the
  model it passed and the hub's ``stream``.

Schemas: function parameters and response schemas are sent as ``parametersJsonSchema`` /
``responseJsonSchema`` (full JSON Schema, no lossy conversion); decoding also accepts Gemini's OpenAPI-subset
``parameters`` / ``responseSchema`` and lowercases their ``type`` names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.base import CodecError, HubRequest
from omniroute_translator.codecs.gemini._contents import contents_to_messages, messages_to_contents, system_to_message
from omniroute_translator.codecs.gemini._parts import obj

__all__ = ["decode_request", "encode_request", "json_schema_from_openapi"]

PASSTHROUGH_KEY = "gemini"
# generationConfig keys with a hub field: camelCase -> hub name
_CONFIG_TO_HUB: Mapping[str, str] = {
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
    "maxOutputTokens": "max_tokens",
    "seed": "seed",
    "candidateCount": "n",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
}
_HANDLED_CONFIG = frozenset(
    {*_CONFIG_TO_HUB, "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig"}
)
_KNOWN_TOP = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model", "stream"})
# reasoning_effort <-> thinkingBudget; the inverse of the OpenAI codec's budget -> effort mapping
_BUDGET_BY_EFFORT: Mapping[str, int] = {"minimal": 128, "low": 1024, "medium": 2048, "high": 4096}
_CAMEL: Mapping[str, str] = {
    "thinking_budget": "thinkingBudget",
    "thinking_level": "thinkingLevel",
    "include_thoughts": "includeThoughts",
}
_EFFORT_BY_LEVEL: Mapping[str, str] = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


def _invalid(message: str, param: str) -> CodecError:
    return CodecError(hub_error(400, message, param=param))


def json_schema_from_openapi(schema: Any) -> Any:
    """Gemini's OpenAPI-subset schema as JSON Schema: ``type`` names lowercased (``OBJECT`` → ``object``) and
    ``nullable: true`` folded into the type list, recursively."""
    if isinstance(schema, list):
        return [json_schema_from_openapi(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: json_schema_from_openapi(v) for k, v in schema.items() if k != "nullable"}
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
        if schema.get("nullable") is True:
            out["type"] = [out["type"], "null"]
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: json_schema_from_openapi(v) for k, v in schema["properties"].items()}
    return out


def decode_request(body: bytes) -> HubRequest:
    """Parse and validate a ``generateContent`` body. Raises :class:`CodecError` (400) when it is not a JSON
    object or its ``contents`` / ``tools`` / ``toolConfig`` / ``generationConfig`` are malformed. Fields with no hub
    equivalent (``safetySettings``, ``cachedContent``, non-function tools, other ``generationConfig`` keys) are
    kept in ``x_passthrough.gemini`` and only reach a Gemini provider."""
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise _invalid("The request body is not valid JSON.", "") from exc
    if not isinstance(doc, dict):
        raise _invalid("The request body must be a JSON object.", "")
    hub: dict[str, Any] = {}
    if isinstance(doc.get("model"), str) and doc["model"]:
        hub["model"] = doc["model"].removeprefix("models/")
    system = system_to_message(doc["systemInstruction"]) if "systemInstruction" in doc else None
    hub["messages"] = ([system] if system else []) + contents_to_messages(doc.get("contents"))
    if isinstance(doc.get("stream"), bool):
        hub["stream"] = doc["stream"]
    passthrough: dict[str, Any] = {k: v for k, v in doc.items() if k not in _KNOWN_TOP}
    _decode_tools(doc.get("tools"), hub, passthrough)
    _decode_tool_config(doc.get("toolConfig"), hub)
    _decode_config(doc.get("generationConfig"), hub, passthrough)
    if passthrough:
        hub["x_passthrough"] = {PASSTHROUGH_KEY: passthrough}
    return hub


def _decode_tools(tools: Any, hub: dict[str, Any], passthrough: dict[str, Any]) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _invalid("'tools' must be an array.", "tools")
    functions: list[dict[str, Any]] = []
    others: list[Any] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _invalid(f"tools[{i}] must be an object.", f"tools[{i}]")
        for decl in tool.get("functionDeclarations") or []:
            if not isinstance(decl, dict) or not isinstance(decl.get("name"), str):
                raise _invalid(f"tools[{i}].functionDeclarations needs named declarations.", f"tools[{i}]")
            function: dict[str, Any] = {"name": decl["name"]}
            if isinstance(decl.get("description"), str):
                function["description"] = decl["description"]
            if isinstance(decl.get("parametersJsonSchema"), dict):
                function["parameters"] = decl["parametersJsonSchema"]
            elif isinstance(decl.get("parameters"), dict):
                function["parameters"] = json_schema_from_openapi(decl["parameters"])
            functions.append({"type": "function", "function": function})
        rest = {k: v for k, v in tool.items() if k != "functionDeclarations"}
        if rest:
            others.append(rest)
    if functions:
        hub["tools"] = functions
    if others:
        passthrough["tools"] = others


def _decode_tool_config(config: Any, hub: dict[str, Any]) -> None:
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict):
        return
    mode = str(calling.get("mode") or "AUTO").upper()
    allowed = [n for n in calling.get("allowedFunctionNames") or [] if isinstance(n, str)]
    if mode == "NONE":
        hub["tool_choice"] = "none"
    elif mode in ("ANY", "VALIDATED"):
        if len(allowed) == 1:
            hub["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
        else:
            hub["tool_choice"] = "required"
            if allowed and isinstance(hub.get("tools"), list):
                # "any of these" has no hub tool_choice; offering only those tools means the same to the model
                hub["tools"] = [t for t in hub["tools"] if t["function"]["name"] in allowed]
    else:
        hub["tool_choice"] = "auto"


def _decode_config(config: Any, hub: dict[str, Any], passthrough: dict[str, Any]) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise _invalid("'generationConfig' must be an object.", "generationConfig")
    for key, hub_key in _CONFIG_TO_HUB.items():
        if config.get(key) is not None:
            hub[hub_key] = config[key]
    stop = config.get("stopSequences")
    if isinstance(stop, list) and stop:
        hub["stop"] = stop
    schema = config.get("responseJsonSchema")
    if schema is None and config.get("responseSchema") is not None:
        schema = json_schema_from_openapi(config["responseSchema"])
    if schema is not None:
        hub["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    elif config.get("responseMimeType") == "application/json":
        hub["response_format"] = {"type": "json_object"}
    _decode_thinking(config.get("thinkingConfig"), hub)
    rest = {k: v for k, v in config.items() if k not in _HANDLED_CONFIG}
    if rest:
        passthrough["generationConfig"] = rest


def _decode_thinking(thinking: Any, hub: dict[str, Any]) -> None:
    if not isinstance(thinking, dict):
        return
    # Gemini parses proto JSON, which takes a field's proto name as well as its camelCase name; the google-genai SDK
    # writes this object's fields in snake_case (``thinking_budget``, ``include_thoughts``)
    thinking = {_CAMEL.get(k, k): v for k, v in thinking.items()}
    budget = thinking.get("thinkingBudget")
    level = thinking.get("thinkingLevel")
    if isinstance(budget, int) and not isinstance(budget, bool):
        if budget == 0:
            hub["thinking"] = {"type": "disabled"}
        elif budget > 0:
            hub["thinking"] = {"type": "enabled", "budget_tokens": budget}
        else:  # -1: the model decides how much to think
            hub["thinking"] = {"type": "enabled"}
    elif isinstance(level, str) and level.upper() in _EFFORT_BY_LEVEL:
        hub["reasoning_effort"] = _EFFORT_BY_LEVEL[level.upper()]
    elif thinking.get("includeThoughts") is True:
        hub["thinking"] = {"type": "enabled"}


def encode_request(hub: HubRequest, model: str) -> bytes:
    """A hub request as a ``generateContent`` body. ``model`` is not written (it belongs in the URL, see the
    module docstring). Dropped: ``parallel_tool_calls``, ``user``, ``logprobs``, ``stream_options``,
    ``cache_control`` hints, redacted reasoning blocks (README table). ``x_passthrough.gemini`` is merged last
    (``generationConfig`` key by key)."""
    del model  # the caller puts it in the URL
    messages = hub.get("messages")
    contents, system = messages_to_contents(messages if isinstance(messages, list) else [])
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = system
    tools = [_declaration(t) for t in hub.get("tools") or [] if isinstance(t, dict)]
    if tools:
        body["tools"] = [{"functionDeclarations": tools}]
    tool_config = _tool_config(hub.get("tool_choice"))
    if tool_config:
        body["toolConfig"] = tool_config
    config = _generation_config(hub)
    if config:
        body["generationConfig"] = config
    passthrough = hub.get("x_passthrough")
    extra = passthrough.get(PASSTHROUGH_KEY) if isinstance(passthrough, dict) else None
    if isinstance(extra, dict):
        for key, value in extra.items():
            if key == "generationConfig" and isinstance(value, dict):
                body["generationConfig"] = {**body.get("generationConfig", {}), **value}
            elif key == "tools" and isinstance(value, list):
                body["tools"] = body.get("tools", []) + value
            else:
                body[key] = value
    return jsonx.dumps(body)


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    function = obj(tool.get("function"))
    decl: dict[str, Any] = {"name": str(function.get("name") or "")}
    if isinstance(function.get("description"), str):
        decl["description"] = function["description"]
    if isinstance(function.get("parameters"), dict):
        decl["parametersJsonSchema"] = function["parameters"]
    return decl


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if choice == "auto":
        return {"functionCallingConfig": {"mode": "AUTO"}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = str(choice["function"].get("name") or "")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def _generation_config(hub: HubRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, hub_key in _CONFIG_TO_HUB.items():
        if hub.get(hub_key) is not None and key != "maxOutputTokens":
            config[key] = hub[hub_key]
    max_tokens = hub.get("max_completion_tokens", hub.get("max_tokens"))
    if isinstance(max_tokens, int):
        config["maxOutputTokens"] = max_tokens
    stop = hub.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    response_format = hub.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        spec = response_format.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            config["responseJsonSchema"] = spec["schema"]
    thinking = _thinking_config(hub)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _thinking_config(hub: HubRequest) -> dict[str, Any] | None:
    """``thinking`` wins over ``reasoning_effort``. Thoughts are always requested when thinking is on, so the
    reasoning reaches clients that read it (Gemini omits thought parts unless ``includeThoughts``)."""
    thinking = hub.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            return {"thinkingBudget": 0}
        budget = thinking.get("budget_tokens")
        return {"thinkingBudget": budget if isinstance(budget, int) else -1, "includeThoughts": True}
    effort = hub.get("reasoning_effort")
    if isinstance(effort, str) and effort in _BUDGET_BY_EFFORT:
        return {"thinkingBudget": _BUDGET_BY_EFFORT[effort], "includeThoughts": True}
    return None
