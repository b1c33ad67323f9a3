"""Everything the OpenAI codec emits in the golden cases validates against OpenAI's OpenAPI description:
responses, stream chunks, error bodies and events, and the requests sent to OpenAI-format providers.

The spec (``shared/specs/openai-openapi.yaml`` beside the repository, or ``OPENAI_OPENAPI_SPEC``) mixes OpenAPI 3.1
schemas with 3.0's ``nullable``, which generic JSON Schema validators ignore (they would reject the ``null``
finish reasons OpenAI itself streams). The small validator below implements exactly the keywords the spec uses
and raises on any other, so it can never pass something merely because it did not understand a rule. (It lives
here rather than in a conftest.py: mypy checks every service's tests together, and conftest modules collide.)
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from omniroute_core import jsonx
from omniroute_translator.goldens import Case, find_cases, outputs

SchemaErrors = Callable[[str, Any], list[str]]

_REPO = Path(__file__).resolve().parents[5]
_ANNOTATIONS = frozenset(
    {"description", "title", "default", "example", "examples", "format", "discriminator", "deprecated", "optional"}
    | {"$schema", "$id", "$defs"}  # $defs holds definitions, resolved through $ref
    | {"min_items", "max_items", "propertyName"}  # misspellings present in the spec; no validator honours them
)
_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


class OpenApiValidator:
    """Validates instances against ``#/components/schemas/<name>``."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self._schemas = schemas

    def errors(self, name: str, instance: Any) -> list[str]:
        errs: list[str] = []
        self._check(self._schemas[name], instance, "$", errs)
        return errs

    def _check(self, schema: Mapping[str, Any], value: Any, path: str, errs: list[str]) -> None:
        for key in schema:
            if key.startswith("x-") or key in _ANNOTATIONS:
                continue
            if key not in _KEYWORDS:
                raise NotImplementedError(f"schema keyword {key!r} at {path} is not implemented")
        if "$ref" in schema:
            self._check(self._schemas[schema["$ref"].rsplit("/", 1)[-1]], value, path, errs)
        if value is None and schema.get("nullable") is True:
            return
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_TYPES[t](value) for t in types):
                errs.append(f"{path}: expected {'/'.join(types)}, got {type(value).__name__}")
                return
        if "enum" in schema and value not in schema["enum"]:
            errs.append(f"{path}: {value!r} not in {schema['enum']}")
        if "const" in schema and value != schema["const"]:
            errs.append(f"{path}: {value!r} != {schema['const']!r}")
        for sub in schema.get("allOf", ()):
            self._check(sub, value, path, errs)
        if "anyOf" in schema and not any(self._ok(sub, value, path) for sub in schema["anyOf"]):
            errs.append(f"{path}: matches none of anyOf")
        if "oneOf" in schema:
            matched = sum(self._ok(sub, value, path) for sub in schema["oneOf"])
            if matched != 1:
                errs.append(f"{path}: matches {matched} of oneOf (exactly one required)")
        if "not" in schema and self._ok(schema["not"], value, path):
            errs.append(f"{path}: matches a 'not' schema")
        if isinstance(value, dict):
            self._object(schema, value, path, errs)
        elif isinstance(value, list):
            if "items" in schema:
                for i, item in enumerate(value):
                    self._check(schema["items"], item, f"{path}[{i}]", errs)
            if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
                errs.append(f"{path}: {len(value)} items outside the allowed range")
        elif isinstance(value, str):
            if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
                errs.append(f"{path}: length {len(value)} outside the allowed range")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                errs.append(f"{path}: does not match {schema['pattern']!r}")
        elif _TYPES["number"](value):
            if value < schema.get("minimum", value) or value > schema.get("maximum", value):
                errs.append(f"{path}: {value} outside the allowed range")
            if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
                errs.append(f"{path}: {value} not above {schema['exclusiveMinimum']}")

    def _object(self, schema: Mapping[str, Any], value: dict[str, Any], path: str, errs: list[str]) -> None:
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                errs.append(f"{path}: missing required {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                self._check(properties[name], item, f"{path}.{name}", errs)
            elif extra is False:
                errs.append(f"{path}: unexpected property {name!r}")
            elif isinstance(extra, dict):
                self._check(extra, item, f"{path}.{name}", errs)
            if "propertyNames" in schema:
                self._check(schema["propertyNames"], name, f"{path}.<{name}>", errs)
        if len(value) > schema.get("maxProperties", len(value)):
            errs.append(f"{path}: more than {schema['maxProperties']} properties")

    def _ok(self, schema: Mapping[str, Any], value: Any, path: str) -> bool:
        errs: list[str] = []
        self._check(schema, value, path, errs)
        return not errs


_KEYWORDS = frozenset(
    {"$ref", "type", "nullable", "enum", "const", "allOf", "anyOf", "oneOf", "not", "properties", "required"}
    | {"additionalProperties", "propertyNames", "maxProperties", "items", "minItems", "maxItems", "minLength"}
    | {"maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum"}
)


def _spec_path() -> Path:
    return Path(os.environ.get("OPENAI_OPENAPI_SPEC") or _REPO.parent / "shared" / "specs" / "openai-openapi.yaml")


@pytest.fixture(scope="module")
def hub_schema_errors() -> Callable[[Any], list[str]]:
    """``errors(instance)`` against the hub request schema (``proto/omniroute/v1/hub.schema.json``)."""
    schema = jsonx.loads((_REPO / "proto" / "omniroute" / "v1" / "hub.schema.json").read_bytes())
    validator = OpenApiValidator({**schema["$defs"], "hub": schema})
    return lambda instance: validator.errors("hub", instance)


@pytest.fixture(scope="module")
def openai_schema_errors() -> SchemaErrors:
    """``errors(schema_name, instance) -> list of messages`` against OpenAI's OpenAPI description."""
    path = _spec_path()
    if not path.exists():
        pytest.fail(f"OpenAI's OpenAPI description is missing at {path} (set OPENAI_OPENAPI_SPEC)")
    # pyyaml is in the environment (via uvicorn[standard]) but has no stubs here; loaded untyped on purpose
    yaml = importlib.import_module("yaml")
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    with path.open("rb") as fh:
        spec = yaml.load(fh, Loader=loader)
    return OpenApiValidator(spec["components"]["schemas"]).errors


# every case whose out.* the OpenAI codec writes, pair cases from other formats included
CASES = [c for c in find_cases() if c.encoder.name == "openai_chat"]


def _events(sse: bytes) -> list[Any]:
    """The JSON payloads of an SSE body (the terminal ``[DONE]`` excluded, after checking it is last)."""
    payloads = [block.removeprefix(b"data: ") for block in sse.split(b"\n\n") if block]
    if b"[DONE]" in payloads:
        assert payloads[-1] == b"[DONE]"
        payloads = payloads[:-1]
    return [jsonx.loads(p) for p in payloads]


def _validate(errors: SchemaErrors, name: str, instance: Any, where: str) -> None:
    problems = errors(name, instance)
    assert not problems, f"{where} is not a valid {name}: {problems}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_emitted_bodies_follow_openai_schema(case: Case, openai_schema_errors: SchemaErrors) -> None:
    files = outputs(case)
    kind, _ = case.kind
    if "out.json" in files:
        body = jsonx.loads(files["out.json"])
        name = {
            "request": "CreateChatCompletionRequest",
            "response": "CreateChatCompletionResponse",
            "error": "ErrorResponse",
        }[kind]
        _validate(openai_schema_errors, name, body, f"{case.name}/out.json")
    if "out.sse" in files:
        for i, event in enumerate(_events(files["out.sse"])):
            name = "ErrorResponse" if "error" in event else "CreateChatCompletionStreamResponse"
            _validate(openai_schema_errors, name, event, f"{case.name}/out.sse event {i}")


def test_validator_rejects_what_openai_would_not_send(openai_schema_errors: SchemaErrors) -> None:
    """The validator is not vacuous: wrong types, missing fields and bad enums are caught."""
    good = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}],
    }
    assert openai_schema_errors("CreateChatCompletionStreamResponse", good) == []
    assert openai_schema_errors("CreateChatCompletionStreamResponse", {**good, "object": "chat.completion"})
    assert openai_schema_errors("CreateChatCompletionStreamResponse", {**good, "created": "1"})
    bad_choice = {"index": 0, "delta": {}, "finish_reason": "done"}
    assert openai_schema_errors("CreateChatCompletionStreamResponse", {**good, "choices": [bad_choice]})
    assert openai_schema_errors("CreateChatCompletionResponse", {"id": "x", "object": "chat.completion"})
    assert openai_schema_errors("ErrorResponse", {"error": {"message": "m", "type": "t"}})


REQUEST_CASES = [c for c in CASES if c.kind[0] == "request"]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=[c.name for c in REQUEST_CASES])
def test_hub_requests_follow_the_hub_schema(case: Case, hub_schema_errors: Callable[[Any], list[str]]) -> None:
    """What the decoder produces (and what encode cases start from) is a valid hub request."""
    hub_path = case.path / "hub.json"
    if not hub_path.exists():
        assert (case.path / "decode_error.json").exists()
        return
    problems = hub_schema_errors(jsonx.loads(hub_path.read_bytes()))
    assert not problems, f"{case.name}/hub.json is not a valid hub request: {problems}"
