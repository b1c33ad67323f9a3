from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_core.errors import hub_error
from omniroute_translator.codecs.hub import (
    error_chunk,
    error_from_chunk,
    has_content,
    is_error_chunk,
    usage_to_hub,
    usage_to_proto,
)


def test_usage_to_proto_reads_the_canonical_fields() -> None:
    usage = usage_to_proto(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 20},
            "completion_tokens_details": {"reasoning_tokens": 30},
        }
    )
    assert usage == common_pb2.Usage(
        input_tokens=100,
        output_tokens=50,
        cached_input_tokens=60,
        cache_creation_tokens=20,
        reasoning_tokens=30,
        total_tokens=150,
    )


def test_usage_to_proto_tolerates_garbage() -> None:
    assert usage_to_proto(None) == common_pb2.Usage()
    assert usage_to_proto({"prompt_tokens": True, "completion_tokens": "3", "prompt_tokens_details": 5}) == (
        common_pb2.Usage()
    )


def test_usage_round_trip() -> None:
    usage = common_pb2.Usage(
        input_tokens=10, output_tokens=5, cached_input_tokens=4, cache_creation_tokens=2, reasoning_tokens=1
    )
    expected = common_pb2.Usage()
    expected.CopyFrom(usage)
    expected.total_tokens = 15
    assert usage_to_proto(usage_to_hub(usage)) == expected
    assert usage_to_hub(common_pb2.Usage(input_tokens=1)) == {
        "prompt_tokens": 1,
        "completion_tokens": 0,
        "total_tokens": 1,
    }


def test_error_chunk_round_trip() -> None:
    err = hub_error(429, "slow down", code="rate_limit_exceeded", param="model")
    chunk = error_chunk(err)
    assert is_error_chunk(chunk)
    assert error_from_chunk(chunk) == err
    assert error_from_chunk({"error": "x"}).status == 502
    assert error_from_chunk({"error": {}}) == hub_error(502, "upstream stream failed")


def test_has_content() -> None:
    def chunk(delta: dict[str, object]) -> dict[str, object]:
        return {"choices": [{"index": 0, "delta": delta}]}

    assert not has_content(chunk({"role": "assistant", "content": ""}))
    assert not has_content({"choices": [], "usage": {"prompt_tokens": 1}})
    assert not has_content({"error": {"message": "x"}})
    assert has_content(chunk({"content": "a"}))
    assert has_content(chunk({"reasoning_content": "a"}))
    assert has_content(chunk({"tool_calls": [{"index": 0}]}))
    assert has_content(chunk({"refusal": "no"}))
