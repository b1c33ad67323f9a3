from __future__ import annotations

import pytest

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_translator.codecs.base import CodecError, Context
from omniroute_translator.codecs.openai_chat.response import (
    decode_response,
    encode_response,
    normalize_message,
    normalize_usage,
)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"not json", 502), (b"[1]", 502), (b'{"id": "x"}', 502), (b'{"error": {"type": "invalid_request_error"}}', 400)],
)
def test_decode_failures(body: bytes, status: int) -> None:
    with pytest.raises(CodecError) as info:
        decode_response(body)
    assert info.value.error.status == status


def test_usage_normalization_keeps_provider_fields() -> None:
    usage = normalize_usage({"prompt_tokens": 10, "completion_tokens": 2, "cache_creation_input_tokens": 7, "x": 1})
    assert usage == {
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "cache_creation_input_tokens": 7,
        "x": 1,
        "prompt_tokens_details": {"cache_write_tokens": 7},
        "total_tokens": 12,
    }
    assert normalize_usage(None) is None
    assert normalize_usage("lots") is None


def test_explicit_details_win_over_dialect_fields() -> None:
    usage = normalize_usage(
        {"prompt_tokens": 10, "prompt_cache_hit_tokens": 9, "prompt_tokens_details": {"cached_tokens": 3}}
    )
    assert usage is not None
    assert usage["prompt_tokens_details"] == {"cached_tokens": 3}


def test_normalize_message_keeps_native_reasoning_content() -> None:
    message = normalize_message({"role": "assistant", "content": "<think>b</think>c", "reasoning_content": "a"})
    assert message == {"role": "assistant", "content": "c", "reasoning_content": "ab"}
    assert normalize_message({"content": "x", "reasoning": ""}) == {"content": "x"}


def test_decoded_usage_is_the_proto() -> None:
    body = {
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "completion_tokens_details": {"reasoning_tokens": 2}},
    }
    decoded = decode_response(jsonx.dumps(body))
    assert decoded.usage == common_pb2.Usage(input_tokens=3, output_tokens=4, reasoning_tokens=2, total_tokens=7)


def test_encode_uses_context_only_where_the_hub_is_silent() -> None:
    ctx = Context(model="alias", request_id="r1", created_unix=99)
    out = jsonx.loads(encode_response({"id": "given", "created": 5, "model": "upstream", "choices": []}, ctx))
    assert (out["id"], out["created"], out["model"]) == ("given", 5, "alias")
    out = jsonx.loads(encode_response({"choices": []}, Context(request_id="r1", created_unix=99)))
    assert (out["id"], out["created"], out["model"]) == ("chatcmpl-r1", 99, "")
