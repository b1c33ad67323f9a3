from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_translator.codecs.base import Context
from omniroute_translator.codecs.openai_chat.stream import OpenAIChatStreamDecoder, OpenAIChatStreamEncoder


def _event(doc: object) -> bytes:
    return b"data: " + jsonx.dumps(doc) + b"\n\n"


def _chunk(content: str, finish: str | None = None, index: int = 0) -> dict[str, object]:
    return {
        "id": "c",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": {"content": content}, "finish_reason": finish}],
    }


def test_complete_after_done_and_later_input_ignored() -> None:
    assert not OpenAIChatStreamDecoder().complete
    decoder = OpenAIChatStreamDecoder()
    assert decoder.feed(_event(_chunk("a")) + b"data: [DONE]\n\n" + _event(_chunk("b"))) == [_chunk("a")]
    assert decoder.complete
    assert decoder.feed(_event(_chunk("c"))) == []
    end = decoder.end()
    assert end.chunks == []
    assert end.complete


def test_think_state_is_per_choice() -> None:
    decoder = OpenAIChatStreamDecoder()
    chunks = decoder.feed(_event(_chunk("<think>x", index=0)) + _event(_chunk("plain", index=1)))
    assert [c["choices"] for c in chunks] == [
        [{"index": 0, "delta": {"reasoning_content": "x"}, "finish_reason": None}],
        [{"index": 1, "delta": {"content": "plain"}, "finish_reason": None}],
    ]


def test_held_text_is_released_at_end_of_input_with_the_last_ids() -> None:
    decoder = OpenAIChatStreamDecoder()
    assert decoder.feed(_event(_chunk("<th"))) == []
    end = decoder.end()
    assert not end.complete
    assert end.chunks == [
        {
            "id": "c",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "<th"}, "finish_reason": None}],
        }
    ]


def test_held_text_is_released_before_done() -> None:
    decoder = OpenAIChatStreamDecoder()
    chunks = decoder.feed(_event(_chunk("<think>a</thi")) + b"data: [DONE]\n\n")
    assert [c["choices"][0]["delta"] for c in chunks] == [{"reasoning_content": "a"}, {"reasoning_content": "</thi"}]


def test_usage_chunk_keeps_empty_choices() -> None:
    decoder = OpenAIChatStreamDecoder()
    [chunk] = decoder.feed(_event({"id": "c", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}))
    assert chunk["choices"] == []
    assert chunk["usage"]["total_tokens"] == 2


def test_non_object_json_is_an_error_chunk() -> None:
    [chunk] = OpenAIChatStreamDecoder().feed(b"data: [1, 2]\n\n")
    assert chunk["error"]["status"] == 502


def test_encoder() -> None:
    encoder = OpenAIChatStreamEncoder(Context(model="alias", request_id="r", created_unix=7))
    out = encoder.encode({"choices": [{"delta": {"content": "x"}}], "usage": None})
    assert jsonx.loads(out.removeprefix(b"data: ")) == {
        "id": "chatcmpl-r",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "alias",
        "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}],
    }
    assert out.endswith(b"\n\n")
    assert encoder.finish(common_pb2.Usage(input_tokens=1)) == b"data: [DONE]\n\n"
    assert encoder.error(common_pb2.Error(status=500, type="server_error", message="boom")).startswith(
        b'data: {"error":{"message":"boom"'
    )
