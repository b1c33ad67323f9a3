"""What the Gemini codec emits validates against google-genai's own pydantic models (``extra="forbid"``, so a
misspelled field fails), and what it decodes is a valid hub request."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.genai import types

from omniroute_core import jsonx
from omniroute_translator.goldens import Case, find_cases, outputs

_REPO = Path(__file__).resolve().parents[5]
CASES = [c for c in find_cases() if c.encoder.name == "gemini"]
REQUESTS = [c for c in CASES if c.kind[0] == "request"]
RESPONSES = [c for c in CASES if c.kind[0] == "response"]
STREAMS = [c for c in CASES if c.kind[0] == "stream"]
ERRORS = [c for c in CASES if c.kind[0] == "error"]
_REQUEST_FIELDS: dict[str, Callable[[Any], object]] = {
    "contents": lambda v: [types.Content.model_validate(c) for c in v],
    "systemInstruction": types.Content.model_validate,
    "tools": lambda v: [types.Tool.model_validate(t) for t in v],
    "toolConfig": types.ToolConfig.model_validate,
    "generationConfig": types.GenerationConfig.model_validate,
    "safetySettings": lambda v: [types.SafetySetting.model_validate(s) for s in v],
    "cachedContent": lambda v: isinstance(v, str) or pytest.fail("cachedContent must be a string"),
}


@pytest.fixture(scope="module")
def hub_schema_errors() -> Callable[[Any], list[str]]:
    """``errors(instance)`` against ``proto/omniroute/v1/hub.schema.json``, with the OpenAI contract test's
    validator (loaded by path: test modules are not a package)."""
    path = Path(__file__).resolve().parents[1] / "openai_chat" / "test_contract.py"
    spec = importlib.util.spec_from_file_location("_openai_contract", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    schema = jsonx.loads((_REPO / "proto" / "omniroute" / "v1" / "hub.schema.json").read_bytes())
    validator = module.OpenApiValidator({**schema["$defs"], "hub": schema})
    return lambda instance: list(validator.errors("hub", instance))


def _ids(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


def _events(sse: bytes) -> list[Any]:
    assert sse == b"" or sse.endswith(b"\r\n\r\n"), "Gemini events end with CRLF CRLF"
    return [jsonx.loads(block.removeprefix(b"data: ")) for block in sse.split(b"\r\n\r\n") if block]


def _check_error(doc: Any) -> None:
    assert set(doc) == {"error"}
    assert set(doc["error"]) == {"code", "message", "status"}
    assert isinstance(doc["error"]["code"], int)


@pytest.mark.parametrize("case", REQUESTS, ids=_ids(REQUESTS))
def test_request_bodies_validate(case: Case) -> None:
    files = outputs(case)
    if "out.json" not in files:
        return
    body = jsonx.loads(files["out.json"])
    assert "model" not in body and "stream" not in body, "the model and stream flag belong in the URL"
    for key, value in body.items():
        assert key in _REQUEST_FIELDS, f"{case.name}: unexpected top-level field {key!r}"
        _REQUEST_FIELDS[key](value)


@pytest.mark.parametrize("case", RESPONSES, ids=_ids(RESPONSES))
def test_response_bodies_validate(case: Case) -> None:
    files = outputs(case)
    if "out.json" in files:
        types.GenerateContentResponse.model_validate(jsonx.loads(files["out.json"]))


@pytest.mark.parametrize("case", STREAMS, ids=_ids(STREAMS))
def test_stream_chunks_validate(case: Case) -> None:
    for event in _events(outputs(case)["out.sse"]):
        if "error" in event:
            _check_error(event)
        else:
            types.GenerateContentResponse.model_validate(event)


@pytest.mark.parametrize("case", ERRORS, ids=_ids(ERRORS))
def test_error_envelopes(case: Case) -> None:
    files = outputs(case)
    _check_error(jsonx.loads(files["out.json"]))
    [event] = _events(files["out.sse"])
    _check_error(event)


DECODED = [c for c in find_cases() if c.codec.name == "gemini" and c.kind == ("request", "decode")]


@pytest.mark.parametrize("case", DECODED, ids=_ids(DECODED))
def test_decoded_requests_follow_the_hub_schema(case: Case, hub_schema_errors: Callable[[Any], list[str]]) -> None:
    """The hub schema requires ``model``; a Gemini body has none (it is in the URL), so the caller's is added."""
    hub_path = case.path / "hub.json"
    if not hub_path.exists():
        assert (case.path / "decode_error.json").exists()
        return
    hub = jsonx.loads(hub_path.read_bytes())
    problems = hub_schema_errors({"model": "from-the-url", **hub})
    assert not problems, f"{case.name}/hub.json is not a valid hub request: {problems}"


def test_sdk_rejects_what_gemini_would_not_send() -> None:
    """The SDK models are not vacuous: an unknown or misspelled field fails."""
    good = {"candidates": [{"content": {"role": "model", "parts": [{"text": "a"}]}, "finishReason": "STOP"}]}
    types.GenerateContentResponse.model_validate(good)
    with pytest.raises(ValueError, match="Extra inputs"):
        types.GenerateContentResponse.model_validate({"candidates": [{"content": {"parts": [{"txt": "a"}]}}]})
    with pytest.raises(ValueError, match="Extra inputs"):
        types.GenerateContentResponse.model_validate({"choices": []})
