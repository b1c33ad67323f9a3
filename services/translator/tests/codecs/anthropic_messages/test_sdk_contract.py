"""Everything the Anthropic codec emits in the golden cases is accepted by the official ``anthropic`` SDK's own
models: response bodies (``Message``), error bodies (``ErrorResponse``), request bodies (``MessageCreateParams``),
and stream events (``RawMessageStreamEvent``), which the SDK's own accumulator also folds into a ``Message``.
Stream encodings are also checked for a well-formed event order (Anthropic's content-block protocol)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anthropic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, MessageParam, RawMessageStreamEvent, ToolChoiceParam, ToolParam
from anthropic.types.shared import ErrorResponse
from pydantic import TypeAdapter

from omniroute_core import jsonx
from omniroute_translator.goldens import Case, find_cases, outputs

CASES = [c for c in find_cases() if c.encoder.name == "anthropic_messages"]
_EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)
_MESSAGE_PARAM: TypeAdapter[MessageParam] = TypeAdapter(MessageParam)
_TOOL: TypeAdapter[ToolParam] = TypeAdapter(ToolParam)
_TOOL_CHOICE: TypeAdapter[ToolChoiceParam] = TypeAdapter(ToolChoiceParam)


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


def _drain(value: Any) -> None:
    """Consume pydantic's lazy iterators (the SDK's ``Iterable[...]`` fields), which validates their items."""
    if isinstance(value, dict):
        for item in value.values():
            _drain(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _drain(item)
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        _drain(list(value))


def check_request(body: dict[str, Any]) -> None:
    """The parts of ``MessageCreateParams`` pydantic can check eagerly (the SDK types lists as lazy ``Iterable``s,
    so each message, tool and block is validated on its own)."""
    assert isinstance(body["model"], str) and body["model"]
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    for message in body["messages"]:
        _drain(_MESSAGE_PARAM.validate_python(message))
    for tool in body.get("tools", []):
        _TOOL.validate_python(tool)
    if "tool_choice" in body:
        _TOOL_CHOICE.validate_python(body["tool_choice"])
    system = body.get("system")
    assert system is None or isinstance(system, str) or all(b["type"] == "text" for b in system)
    thinking = body.get("thinking")
    if thinking and thinking["type"] == "enabled":
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]


def check_stream(body: bytes, *, complete: bool) -> Message | None:
    """Validates each event, the block protocol, and returns the SDK's accumulated message when complete."""
    events = sse_events(body)
    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    open_index: int | None = None
    next_index = 0
    for i, (name, doc) in enumerate(events):
        assert doc["type"] == name
        if name == "error":
            ErrorResponse.model_validate(doc)
            assert i == len(events) - 1, "nothing follows an error event"
            return None
        event = _EVENTS.validate_python(doc)
        assert (i == 0) == (name == "message_start"), f"event {i} {name}: message_start must come first, once"
        if name == "content_block_start":
            assert open_index is None and doc["index"] == next_index, "blocks open one at a time, in order"
            open_index, next_index = doc["index"], next_index + 1
        elif name == "content_block_stop":
            assert doc["index"] == open_index
            open_index = None
        elif name == "content_block_delta":
            assert doc["index"] < next_index
        elif name in ("message_delta", "message_stop"):
            assert open_index is None, "every block is closed before the message ends"
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    if complete:
        assert [name for name, _ in events[-2:]] == ["message_delta", "message_stop"]
        return Message.model_validate(snapshot.model_dump())
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_emitted_bodies_are_valid_for_the_sdk(case: Case) -> None:
    files = outputs(case)
    kind = case.kind[0]
    if "out.json" in files:
        body = jsonx.loads(files["out.json"])
        if kind == "response":
            Message.model_validate(body, strict=False)
        elif kind == "error":
            ErrorResponse.model_validate(body)
        else:
            check_request(body)
    if kind == "error":
        [(name, doc)] = sse_events(files["out.sse"])
        assert name == "error"
        ErrorResponse.model_validate(doc)
    elif "out.sse" in files:
        complete = (
            bool(case.spec.get("complete")) if case.kind[1] == "encode" else "message_stop" in files["out.sse"].decode()
        )
        check_stream(files["out.sse"], complete=complete)


def test_the_checks_are_not_vacuous() -> None:
    with pytest.raises(ValueError, match="stop_reason"):
        Message.model_validate(
            {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": "x",
                "content": [],
                "stop_reason": "done",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            }
        )
    message: dict[str, Any] = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    start = b"event: message_start\ndata: " + jsonx.dumps({"type": "message_start", "message": message}) + b"\n\n"
    stray_stop = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    with pytest.raises(AssertionError):
        check_stream(start + stray_stop, complete=False)
    with pytest.raises(ValueError, match="tool_use_id"):
        check_request(
            {"model": "x", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}
        )
    assert anthropic.__version__
