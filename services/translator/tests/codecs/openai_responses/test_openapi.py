"""Everything the Responses codec emits in the golden cases validates against OpenAI's OpenAPI description:
request bodies (``CreateResponse``), responses (``Response``), error bodies (``ErrorResponse``) and every stream
event (``ResponseStreamEvent``). The validator is the Chat contract test's (loaded from its file: test modules are
not a package here), which implements exactly the keywords the spec uses and raises on any other."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from omniroute_core import jsonx
from omniroute_translator.goldens import Case, find_cases, outputs

SchemaErrors = Callable[[str, Any], list[str]]
_CHAT_CONTRACT = Path(__file__).resolve().parents[1] / "openai_chat" / "test_contract.py"
CASES = [c for c in find_cases() if c.encoder.name == "openai_responses"]
_INPUT_ITEMS = ("EasyInputMessage", "Item")


@pytest.fixture(scope="module")
def schema_errors() -> SchemaErrors:
    spec = importlib.util.spec_from_file_location("_openai_chat_contract", _CHAT_CONTRACT)
    assert spec is not None and spec.loader is not None
    contract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(contract)
    path = contract._spec_path()
    yaml = importlib.import_module("yaml")
    with path.open("rb") as fh:
        doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader)
    validator = contract.OpenApiValidator(doc["components"]["schemas"])
    return lambda name, instance: list(validator.errors(name, instance))


def _events(sse: bytes) -> list[Any]:
    return [jsonx.loads(block.split(b"\ndata: ", 1)[1]) for block in sse.split(b"\n\n") if block]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_emitted_bodies_follow_openai_schema(case: Case, schema_errors: SchemaErrors) -> None:
    files = outputs(case)
    kind = case.kind[0]
    if "out.json" in files:
        body = jsonx.loads(files["out.json"])
        name = {"request": "CreateResponse", "response": "Response", "error": "ErrorResponse"}[kind]
        if kind == "request" and isinstance(body.get("input"), list):
            # The spec's InputItem is a oneOf whose branches overlap (EasyInputMessage and Item's InputMessage both
            # describe a message with a parts list), so no real body with parts matches exactly one: each item is
            # checked against the branches instead, and must match at least one.
            for i, item in enumerate(body.pop("input")):
                assert any(not schema_errors(ref, item) for ref in _INPUT_ITEMS), f"{case.name} input[{i}]: {item}"
        problems = schema_errors(name, body)
        assert not problems, f"{case.name}/out.json is not a valid {name}: {problems}"
    for i, event in enumerate(_events(files.get("out.sse", b""))):
        problems = schema_errors("ResponseStreamEvent", event)
        assert not problems, f"{case.name}/out.sse event {i} ({event.get('type')}) is not valid: {problems}"


def test_validator_is_not_vacuous(schema_errors: SchemaErrors) -> None:
    delta = {"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "content_index": 0}
    assert schema_errors("ResponseStreamEvent", {**delta, "delta": "a", "logprobs": [], "sequence_number": 0}) == []
    assert schema_errors("ResponseStreamEvent", {**delta, "delta": "a", "sequence_number": 0})  # logprobs required
    assert schema_errors("Response", {"id": "r", "object": "response", "created_at": 1, "output": []})
