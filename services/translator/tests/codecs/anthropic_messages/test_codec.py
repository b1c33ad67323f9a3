"""Behaviours of the Anthropic codec that golden cases cannot show: refusals raised while encoding, budget
fitting, and encoder/decoder state edges."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.anthropic_messages import CODEC
from omniroute_translator.codecs.anthropic_messages.errors import anthropic_type, error_from_envelope
from omniroute_translator.codecs.base import CodecError, Context
from omniroute_translator.goldens import find_cases

_USER = [{"role": "user", "content": "hi"}]


def _encode(**hub: Any) -> dict[str, Any]:
    body = jsonx.loads(CODEC.encode_request({"model": "m", "messages": _USER, **hub}, "claude-x"))
    assert isinstance(body, dict)
    return body


def test_n_above_one_is_refused_with_a_400() -> None:
    with pytest.raises(CodecError) as info:
        _encode(n=2)
    assert (info.value.error.status, info.value.error.param) == (400, "n")


def test_audio_input_is_refused_with_a_400() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(CodecError) as info:
        CODEC.encode_request({"model": "m", "messages": [{"role": "user", "content": [audio]}]}, "claude-x")
    assert info.value.error.status == 400


def test_file_without_inline_data_is_refused() -> None:
    part = {"type": "file", "file": {"file_id": "file-1"}}
    with pytest.raises(CodecError):
        CODEC.encode_request({"model": "m", "messages": [{"role": "user", "content": [part]}]}, "claude-x")


@pytest.mark.parametrize(
    ("max_tokens", "thinking", "expected_max", "expected_thinking"),
    [
        (None, {"type": "enabled", "budget_tokens": 8000}, 12096, {"type": "enabled", "budget_tokens": 8000}),
        (3000, {"type": "enabled", "budget_tokens": 8000}, 3000, {"type": "enabled", "budget_tokens": 1500}),
        (1500, {"type": "enabled", "budget_tokens": 4096}, 1500, {"type": "enabled", "budget_tokens": 1024}),
        (900, {"type": "enabled", "budget_tokens": 4096}, 900, None),
        (5000, {"type": "enabled"}, 5000, {"type": "adaptive"}),
        (5000, {"type": "disabled"}, 5000, {"type": "disabled"}),
    ],
)
def test_thinking_budget_fits_under_max_tokens(
    max_tokens: int | None, thinking: dict[str, Any], expected_max: int, expected_thinking: dict[str, Any] | None
) -> None:
    hub: dict[str, Any] = {"thinking": thinking}
    if max_tokens is not None:
        hub["max_tokens"] = max_tokens
    body = _encode(**hub)
    assert body["max_tokens"] == expected_max
    assert body.get("thinking") == expected_thinking


def test_minimal_effort_means_no_thinking() -> None:
    assert "thinking" not in _encode(reasoning_effort="minimal")


def test_tool_choice_without_tools_is_left_out() -> None:
    assert "tool_choice" not in _encode(tool_choice="required", parallel_tool_calls=False)
    assert _encode(tool_choice="none")["tool_choice"] == {"type": "none"}


def test_error_types_and_statuses() -> None:
    assert anthropic_type(hub_error(529, "x")) == "overloaded_error"
    assert anthropic_type(hub_error(503, "x")) == "overloaded_error"
    assert anthropic_type(hub_error(413, "x")) == "invalid_request_error"
    assert anthropic_type(hub_error(504, "x")) == "timeout_error"
    assert anthropic_type(common_pb2.Error(status=500, type="server_error")) == "api_error"
    err = error_from_envelope({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})
    assert (err.status, err.type, err.message) == (429, "rate_limit_error", "slow")
    assert error_from_envelope({"error": "text"}, status=418).status == 418
    assert error_from_envelope({}).status == 502


def test_encoder_writes_nothing_after_an_error() -> None:
    encoder = CODEC.stream_encoder(Context(model="c", request_id="r"))
    first = encoder.encode({"choices": [{"index": 0, "delta": {"content": "a"}}]})
    assert first.startswith(b"event: message_start")
    assert encoder.error(hub_error(502, "boom")).startswith(b"event: error")
    assert encoder.encode({"choices": [{"index": 0, "delta": {"content": "b"}}]}) == b""
    assert encoder.finish(common_pb2.Usage()) == b""


def test_encoder_ignores_other_choices_and_names_late_argument_pieces_by_block() -> None:
    encoder = CODEC.stream_encoder(Context(model="c", request_id="r"))
    out = encoder.encode(
        {
            "choices": [
                {"index": 1, "delta": {"content": "ignored"}},
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}},
                            {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}},
                            {"index": 0, "function": {"arguments": "{}"}},
                        ]
                    },
                },
            ]
        }
    )
    assert b"ignored" not in out
    assert out.endswith(
        b'{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}\n\n'
    )


def test_tool_call_without_id_gets_one_from_the_request_id() -> None:
    encoder = CODEC.stream_encoder(Context(model="c", request_id="r1"))
    out = encoder.encode(
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 3, "function": {"name": "f"}}]}}]}
    )
    assert b'"id":"toolu_r1_3"' in out


def test_decoder_without_message_start_and_after_stop() -> None:
    decoder = CODEC.stream_decoder()
    chunks = decoder.feed(
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"x"}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        b'event: ping\ndata: {"type":"ping"}\n\n'
    )
    assert [c["choices"][0]["delta"] for c in chunks] == [{"content": "x"}]
    assert decoder.complete
    assert decoder.feed(b"data: {}\n\n") == []
    assert decoder.end().complete


def test_count_tokens_body_needs_no_max_tokens() -> None:
    hub = CODEC.decode_request(b'{"model":"claude-x","messages":[{"role":"user","content":"hi"}]}')
    assert "max_tokens" not in hub
    with pytest.raises(CodecError):
        CODEC.decode_request(b'{"model":"claude-x","max_tokens":"10","messages":[{"role":"user","content":"hi"}]}')


def test_thinking_drops_the_sampling_settings_anthropic_rejects_with_it() -> None:
    body = _encode(reasoning_effort="low", temperature=0.2, top_k=5, top_p=0.5)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert not {"temperature", "top_k", "top_p"} & body.keys()
    kept = _encode(thinking={"type": "enabled", "budget_tokens": 2048}, temperature=1, top_p=0.97)
    assert (kept["temperature"], kept["top_p"]) == (1, 0.97)


def test_forced_tool_use_wins_over_thinking() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = _encode(reasoning_effort="high", tools=tools, tool_choice="required", temperature=0.3)
    assert "thinking" not in body
    assert (body["tool_choice"], body["temperature"]) == ({"type": "any"}, 0.3)


def test_golden_cases_cover_the_required_behaviours() -> None:
    names = {c.path.name for c in find_cases() if c.codec.name == "anthropic_messages" or c.encoder is CODEC}
    required = {
        "simple_text",
        "system_blocks_cache_control",
        "image_base64",
        "tool_use_and_result",
        "tool_use_empty_input",
        "parallel_tool_results",
        "thinking_blocks_round_trip",
        "count_tokens_body",
        "response_usage_cache",
        "response_thinking_signature",
        "stream_tool_use",
        "stream_thinking_signature",
        "stream_error_event",
        "stream_encode_tool_calls",
        "render_error_overloaded",
        "pair_to_openai_chat_request",
        "pair_to_openai_chat_response",
        "pair_to_openai_chat_stream_tool_use",
        "pair_to_anthropic_messages_request",
        "pair_to_anthropic_messages_response",
        "pair_to_anthropic_messages_stream",
    }
    assert required <= names, required - names
    assert len([c for c in find_cases() if c.codec.name == "anthropic_messages"]) >= 30
