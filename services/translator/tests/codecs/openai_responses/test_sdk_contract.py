"""Everything the Responses codec emits in the golden cases is accepted by the official ``openai`` SDK's own models:
response bodies (``Response``), error bodies (``ErrorObject``), request bodies (``ResponseCreateParams``) and
stream events (``ResponseStreamEvent``), which the SDK's own stream state also folds into the final ``Response``.
Streams are also checked for a well-formed event protocol (sequence numbers, output items opened and closed one
at a time, content parts inside their item, the terminal event carrying every item)."""

from __future__ import annotations

from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from openai.types.shared import ErrorObject
from pydantic import TypeAdapter

from omniroute_core import jsonx
from omniroute_translator.goldens import Case, find_cases, outputs

CASES = [c for c in find_cases() if c.encoder.name == "openai_responses"]
_EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
_CREATE: TypeAdapter[ResponseCreateParamsNonStreaming] = TypeAdapter(ResponseCreateParamsNonStreaming)
_CREATE_STREAM: TypeAdapter[ResponseCreateParamsStreaming] = TypeAdapter(ResponseCreateParamsStreaming)
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def sse_events(body: bytes) -> list[tuple[str, Any]]:
    """``(event name, JSON payload)`` per event of a body this codec wrote (one ``event:`` and one ``data:``)."""
    events = []
    for block in body.split(b"\n\n"):
        if not block:
            continue
        head, data = block.split(b"\n")
        assert head.startswith(b"event: ") and data.startswith(b"data: "), block
        events.append((head.removeprefix(b"event: ").decode(), jsonx.loads(data.removeprefix(b"data: "))))
    return events


def check_stream(body: bytes, *, complete: bool) -> Response | None:
    """Validates each event and the protocol; returns the final response (checked against the SDK's fold)."""
    events = sse_events(body)
    state: ResponseStreamState[object] = ResponseStreamState(input_tools=omit, text_format=omit)
    open_index: int | None = None
    done_items: list[Any] = []
    final: Response | None = None
    for i, (name, doc) in enumerate(events):
        assert doc["type"] == name and doc["sequence_number"] == i, f"event {i}: {name} numbered {doc}"
        event = _EVENTS.validate_python(doc)
        if name == "error":
            assert [n for n, _ in events[i + 1 :]] in ([], ["response.failed"]), "only response.failed follows"
            continue
        assert (i < 2) == (name in ("response.created", "response.in_progress")), f"event {i}: {name}"
        if name == "response.output_item.added":
            assert open_index is None and doc["output_index"] == len(done_items), "items open one at a time"
            open_index = doc["output_index"]
        elif name == "response.output_item.done":
            assert doc["output_index"] == open_index
            open_index = None
            done_items.append(doc["item"])
        elif "item_id" in doc:
            assert doc["output_index"] < len(done_items) + (open_index is not None)
        if name in TERMINAL:
            assert i == len(events) - 1, "the terminal event is last"
            if name != "response.failed":  # a failure may cut an item short
                assert open_index is None, "every item is closed before the response ends"
            assert doc["response"]["output"] == done_items, "the final response carries every closed item"
            final = Response.model_validate(doc["response"])
        if name != "response.failed":
            state.handle_event(event)
    if complete:
        assert final is not None and final.status in ("completed", "incomplete")
        assert final.usage is not None
        if final.status == "completed":  # the SDK keeps its own fold of the stream only for completed ones
            snapshot = state._completed_response
            assert snapshot is not None and snapshot.output_text == final.output_text
            folded = [(o.type, getattr(o, "id", None), getattr(o, "arguments", None)) for o in snapshot.output]
            assert folded == [(o.type, getattr(o, "id", None), getattr(o, "arguments", None)) for o in final.output]
    return final


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_emitted_bodies_are_valid_for_the_sdk(case: Case) -> None:
    files = outputs(case)
    kind, direction = case.kind
    if "out.json" in files:
        body = jsonx.loads(files["out.json"])
        if kind == "response":
            Response.model_validate(body, strict=False)
        elif kind == "error":
            ErrorObject.model_validate(body["error"])
        else:
            (_CREATE_STREAM if body.get("stream") else _CREATE).validate_python(body)
    if kind == "error":
        [(name, doc)] = sse_events(files["out.sse"])
        assert name == "error"
        _EVENTS.validate_python(doc)
    elif "out.sse" in files:
        complete = (
            bool(case.spec.get("complete")) if direction == "encode" else b"response.completed" in files["out.sse"]
        )
        complete = complete and b"event: error" not in files["out.sse"]
        check_stream(files["out.sse"], complete=complete)


def test_the_checks_are_not_vacuous() -> None:
    good = {"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "content_index": 0}
    _EVENTS.validate_python({**good, "delta": "a", "logprobs": [], "sequence_number": 0})
    with pytest.raises(ValueError, match="delta"):
        _EVENTS.validate_python({**good, "delta": 1, "sequence_number": 0})
    created = {"type": "response.created", "sequence_number": 0, "response": {"id": "r"}}
    added = b'event: response.output_item.added\ndata: {"type":"response.output_item.added","output_index":3}\n\n'
    with pytest.raises((AssertionError, ValueError)):
        check_stream(b"event: response.created\ndata: " + jsonx.dumps(created) + b"\n\n" + added, complete=False)
    with pytest.raises(ValueError, match="output"):
        Response.model_validate({"id": "r", "object": "response", "created_at": 1, "status": "completed"})
