"""What the Ollama codec emits validates against the ollama SDK's models (``ChatRequest``, ``ChatResponse``,
``ListResponse``), and the listing helpers of both new formats have the shapes their SDKs read."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types as genai_types
from ollama import ChatResponse, ListResponse
from ollama._types import ChatRequest  # not re-exported; the request model the client builds

from omniroute_core import jsonx
from omniroute_translator.codecs.gemini import render_models
from omniroute_translator.codecs.ollama import render_tags
from omniroute_translator.goldens import Case, find_cases, outputs

CASES = [c for c in find_cases() if c.encoder.name == "ollama"]
REQUESTS = [c for c in CASES if c.kind[0] == "request"]
RESPONSES = [c for c in CASES if c.kind[0] == "response"]
STREAMS = [c for c in CASES if c.kind[0] == "stream"]
ERRORS = [c for c in CASES if c.kind[0] == "error"]


def _ids(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


def _lines(ndjson: bytes) -> list[Any]:
    assert ndjson == b"" or ndjson.endswith(b"\n"), "every NDJSON line ends with a newline"
    return [jsonx.loads(line) for line in ndjson.split(b"\n") if line]


def _check_error(doc: Any) -> None:
    assert set(doc) == {"error"} and isinstance(doc["error"], str)


@pytest.mark.parametrize("case", REQUESTS, ids=_ids(REQUESTS))
def test_request_bodies_validate(case: Case) -> None:
    files = outputs(case)
    if "out.json" in files:
        body = jsonx.loads(files["out.json"])
        assert isinstance(body["stream"], bool), "Ollama streams by default: the flag is always explicit"
        ChatRequest.model_validate(body)
        for message in body["messages"]:
            for call in message.get("tool_calls", []):
                assert isinstance(call["function"]["arguments"], dict)


@pytest.mark.parametrize("case", RESPONSES, ids=_ids(RESPONSES))
def test_response_bodies_validate(case: Case) -> None:
    files = outputs(case)
    if "out.json" in files:
        response = ChatResponse.model_validate(jsonx.loads(files["out.json"]))
        assert response.done is True


@pytest.mark.parametrize("case", STREAMS, ids=_ids(STREAMS))
def test_stream_lines_validate(case: Case) -> None:
    files = outputs(case)
    lines = _lines(files["out.sse"])
    complete = jsonx.loads(files["end.json"])["complete"] if "end.json" in files else case.spec.get("complete")
    for line in lines:
        if "error" in line:
            _check_error(line)
        else:
            ChatResponse.model_validate(line)
    dones = [line for line in lines if line.get("done") is True]
    assert len(dones) == (1 if complete else 0), "done:true is written once, only for a complete stream"
    if dones:
        assert lines[-1] is dones[0], "done:true is the last line"


@pytest.mark.parametrize("case", ERRORS, ids=_ids(ERRORS))
def test_error_bodies(case: Case) -> None:
    files = outputs(case)
    _check_error(jsonx.loads(files["out.json"]))
    [line] = _lines(files["out.sse"])
    _check_error(line)


def test_tags_listing() -> None:
    body = render_tags(["llama3.2:latest", "qwen3", "llama3.2:latest", ""])
    listing = ListResponse.model_validate(jsonx.loads(body))
    assert [m.model for m in listing.models] == ["llama3.2:latest", "qwen3"]
    assert jsonx.loads(body)["models"][0]["name"] == "llama3.2:latest"


def test_gemini_models_listing() -> None:
    doc = jsonx.loads(render_models(["gemini-2.5-flash", "models/gemini-2.5-pro", "gemini-2.5-flash"]))
    assert [m["name"] for m in doc["models"]] == ["models/gemini-2.5-flash", "models/gemini-2.5-pro"]
    for entry in doc["models"]:
        assert "generateContent" in entry["supportedGenerationMethods"]
        # google-genai's Model has no supportedGenerationMethods (a Vertex-era model); the rest must fit it
        genai_types.Model.model_validate({k: entry[k] for k in ("name", "displayName", "description", "version")})
