"""Everything the OpenAI codec emits in the golden cases validates against OpenAI's OpenAPI description:
responses, stream chunks, error bodies and events, and the requests sent to OpenAI-format providers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from omniroute_core import jsonx
from omniroute_translator.goldens import Case, find_cases, outputs

SchemaErrors = Callable[[str, Any], list[str]]

CASES = [c for c in find_cases() if c.codec.name == "openai_chat"]


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
