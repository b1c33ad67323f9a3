from __future__ import annotations

from omniroute.v1 import common_pb2, translator_pb2
from omniroute_core import jsonx
from omniroute_translator import pipeline
from omniroute_translator.codecs import CODECS
from omniroute_translator.codecs.base import Context
from omniroute_translator.pipeline import StreamSession

OPENAI = common_pb2.FORMAT_OPENAI_CHAT
GEMINI = common_pb2.FORMAT_GEMINI
BODY = b'{"model": "gpt-4o",  "messages": [{"role": "user", "content": "hi"}], "stream": true}'


def _chunk(content: str = "", finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    doc: dict[str, object] = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "up"}
    doc["choices"] = [] if usage else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    if usage:
        doc["usage"] = usage
    return b"data: " + jsonx.dumps(doc) + b"\n\n"


def test_request_same_format_patches_model_bytes_only() -> None:
    req = translator_pb2.TranslateRequestIn(source=OPENAI, target=OPENAI, body=BODY, model="openai/gpt-4o")
    out = pipeline.translate_request(CODECS, req)
    assert not out.HasField("error")
    assert out.body == BODY.replace(b'"gpt-4o"', b'"openai/gpt-4o"')
    assert (out.model, out.stream) == ("gpt-4o", True)


def test_request_same_format_without_model_keeps_bytes() -> None:
    out = pipeline.translate_request(CODECS, translator_pb2.TranslateRequestIn(source=OPENAI, target=OPENAI, body=BODY))
    assert out.body == BODY


def test_request_invalid_body_is_an_error_reply() -> None:
    req = translator_pb2.TranslateRequestIn(source=OPENAI, target=OPENAI, body=b'{"messages": []}')
    out = pipeline.translate_request(CODECS, req)
    assert out.error.status == 400
    assert out.error.param == "model"
    assert out.body == b""


def test_unsupported_pair_names_the_missing_format() -> None:
    # a table without Gemini, so the case does not depend on which formats have codecs today
    req = translator_pb2.TranslateRequestIn(source=OPENAI, target=GEMINI, body=BODY)
    out = pipeline.translate_request({OPENAI: CODECS[OPENAI]}, req)
    assert out.error.status == 400
    assert out.error.code == "unsupported_format"
    assert "target format 'gemini'" in out.error.message
    assert "supported: openai" in out.error.message
    unspecified = pipeline.translate_request(CODECS, translator_pb2.TranslateRequestIn(target=OPENAI, body=BODY))
    assert "source format 'unspecified'" in unspecified.error.message


def test_response_same_format_passes_bytes_with_usage() -> None:
    body = (
        b'{"id":"x","choices":[{"index":0,"message":{"content":"<think>a</think>b"}}],'
        b'"usage":{"prompt_tokens":2,"completion_tokens":3}}'
    )
    out = pipeline.translate_response(
        CODECS, translator_pb2.TranslateResponseIn(source=OPENAI, target=OPENAI, body=body, model="alias")
    )
    assert out.body == body
    assert out.usage == common_pb2.Usage(input_tokens=2, output_tokens=3, total_tokens=5)


def test_response_error_envelope_is_an_error_reply() -> None:
    body = b'{"error":{"message":"quota","type":"insufficient_quota"}}'
    out = pipeline.translate_response(
        CODECS, translator_pb2.TranslateResponseIn(source=OPENAI, target=OPENAI, body=body)
    )
    assert (out.error.status, out.error.message) == (429, "quota")


def test_render_error_falls_back_to_the_hub_envelope() -> None:
    err = common_pb2.Error(status=404, type="not_found_error", message="nope")
    body = pipeline.render_error(CODECS, translator_pb2.RenderErrorIn(target=GEMINI, error=err))
    assert (body.content_type, jsonx.loads(body.body)["error"]["message"]) == ("application/json", "nope")
    event = pipeline.render_error(CODECS, translator_pb2.RenderErrorIn(target=OPENAI, error=err, in_stream=True))
    assert event.content_type == "text/event-stream"
    assert event.body.startswith(b"data: {")


def _session(same_format: bool) -> StreamSession:
    setup = translator_pb2.StreamSetup(source=OPENAI, target=OPENAI, model="alias", request_id="r", created_unix=5)
    session = pipeline.open_stream(CODECS, setup)
    assert isinstance(session, StreamSession)
    if same_format:
        return session
    # a translating session over the same codec exercises the encode path without another format
    codec = CODECS[OPENAI]
    return StreamSession(
        codec.stream_decoder(), codec.stream_encoder(Context("alias", "r", 5)), codec.stream_content_type
    )


def test_passthrough_stream_forwards_bytes_and_flags() -> None:
    session = _session(same_format=True)
    role = _chunk("")
    first = session.feed(role[:10])
    assert first is not None
    assert (first.data, first.content_started) == (role[:10], False)
    second = session.feed(role[10:] + _chunk("hi")[:5])
    assert second is not None
    assert not second.content_started
    third = session.feed(_chunk("hi")[5:] + _chunk("", "stop"))
    assert third is not None
    assert third.content_started
    usage = _chunk(usage={"prompt_tokens": 4, "completion_tokens": 1})
    last_bytes = session.feed(usage + b"data: [DONE]\n\n")
    assert last_bytes is not None
    assert not last_bytes.content_started
    assert session.feed(b"") is None
    done = session.finish()
    assert (done.done, done.complete, done.data) == (True, True, b"")
    assert done.usage == common_pb2.Usage(input_tokens=4, output_tokens=1, total_tokens=5)


def test_translating_stream_batches_events_and_appends_terminal_once() -> None:
    session = _session(same_format=False)
    reply = session.feed(_chunk("a") + _chunk("b") + b"data: [DONE]\n\n")
    assert reply is not None
    assert reply.content_started
    assert reply.data.count(b"data: ") == 3
    assert reply.data.endswith(b"data: [DONE]\n\n")
    assert b'"model":"alias"' in reply.data
    done = session.finish()
    assert done.done and done.complete
    assert done.data == b""


def test_error_event_sets_error_on_its_batch() -> None:
    session = _session(same_format=False)
    reply = session.feed(b'data: {"error":{"message":"boom","type":"server_error"}}\n\n')
    assert reply is not None
    assert (reply.error.status, reply.error.message) == (502, "boom")
    assert not reply.content_started
    done = session.finish()
    assert (done.done, done.complete) == (True, False)


def test_incomplete_stream_flushes_held_text_without_terminal() -> None:
    session = _session(same_format=False)
    assert session.feed(_chunk("<th")) is None
    done = session.finish()
    assert done.done and not done.complete
    assert b'"content":"<th"' in done.data
    assert b"[DONE]" not in done.data
    assert done.content_started


def test_request_same_format_with_escaped_model_key_is_reserialized_untranslated() -> None:
    body = b'{"mod\\u0065l": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "top_k": 3}'
    req = translator_pb2.TranslateRequestIn(source=OPENAI, target=OPENAI, body=body, model="other")
    out = pipeline.translate_request(CODECS, req)
    assert jsonx.loads(out.body) == {"model": "other", "messages": [{"role": "user", "content": "hi"}], "top_k": 3}
