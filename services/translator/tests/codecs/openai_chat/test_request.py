from __future__ import annotations

import pytest

from omniroute_core import jsonx
from omniroute_translator.codecs.base import CodecError
from omniroute_translator.codecs.openai_chat.request import decode_request, encode_request


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"[]", ""),
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "  ", "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "m", "messages": {}}', "messages"),
        (b'{"model": "m", "messages": ["hi"]}', "messages[0]"),
        (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        (b'{"model": "m", "messages": [{"role": "user", "content": ["x"]}]}', "messages[0].content[0]"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
    ],
)
def test_invalid_requests_are_400_naming_the_param(body: bytes, param: str) -> None:
    with pytest.raises(CodecError) as info:
        decode_request(body)
    assert info.value.error.status == 400
    assert info.value.error.type == "invalid_request_error"
    assert info.value.error.param == param


def test_decode_is_identity_for_valid_requests() -> None:
    doc = {"model": "m", "messages": [{"role": "user", "content": None}], "vendor_field": {"a": 1}}
    assert decode_request(jsonx.dumps(doc)) == doc


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 512}, "low"),
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 2048}, "medium"),
        ({"type": "enabled", "budget_tokens": 2049}, "high"),
        ({"type": "enabled"}, "medium"),
        ({"type": "disabled", "budget_tokens": 4096}, None),
        ("enabled", None),
    ],
)
def test_thinking_to_reasoning_effort(thinking: object, effort: str | None) -> None:
    hub = {"model": "m", "messages": [], "thinking": thinking}
    body = jsonx.loads(encode_request(hub, "o3"))
    assert "thinking" not in body
    assert body.get("reasoning_effort") == effort


def test_explicit_reasoning_effort_wins_over_thinking() -> None:
    hub = {"model": "m", "messages": [], "reasoning_effort": "minimal", "thinking": {"type": "enabled"}}
    assert jsonx.loads(encode_request(hub, "o3"))["reasoning_effort"] == "minimal"


def test_encode_puts_model_first_and_keeps_unknown_fields() -> None:
    hub = {"messages": [{"role": "user", "content": "x"}], "model": "old", "metadata": {"k": "v"}}
    body = encode_request(hub, "new")
    assert body.startswith(b'{"model":"new"')
    assert jsonx.loads(body)["metadata"] == {"k": "v"}


def test_non_streaming_request_gets_no_stream_options() -> None:
    body = jsonx.loads(encode_request({"model": "m", "messages": [], "stream": False}, "m"))
    assert "stream_options" not in body
