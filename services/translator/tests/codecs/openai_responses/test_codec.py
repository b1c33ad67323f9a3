"""Responses codec behaviours that are not golden files: what an encoder refuses, the required golden cases, and
streams through the pipeline's StreamSession (an OpenAI Chat provider served to a Responses client) at any batch
split, checked with the official SDK."""

from __future__ import annotations

import random

import pytest

from omniroute.v1 import common_pb2, translator_pb2
from omniroute_translator import pipeline
from omniroute_translator.codecs import CODECS
from omniroute_translator.codecs.base import CodecError
from omniroute_translator.codecs.openai_responses import CODEC
from omniroute_translator.goldens import DEFAULT_ROOT, find_cases
from omniroute_translator.pipeline import StreamSession

from .test_sdk_contract import check_stream

REQUIRED = {
    "simple_text",
    "instructions_and_roles",
    "multi_turn_function_calls",
    "input_image_and_file",
    "tools_flat_and_tool_choice",
    "text_format_json_schema",
    "reasoning_effort_and_items",
    "invalid_previous_response_id",
    "response_text",
    "response_function_calls",
    "response_reasoning_summary",
    "response_incomplete_max_tokens",
    "response_refusal",
    "response_failed",
    "stream_text",
    "stream_function_call",
    "stream_reasoning_summary",
    "stream_error_event",
    "stream_missing_completed",
    "stream_encode_text_usage",
    "stream_encode_tool_calls",
    "stream_encode_error_chunk",
    "render_error_rate_limit",
    "pair_to_openai_chat_request",
    "pair_to_openai_chat_response",
    "pair_to_openai_chat_stream",
    "pair_to_anthropic_messages_request",
    "pair_to_anthropic_messages_response",
    "pair_to_anthropic_messages_stream",
}


def test_required_golden_cases_exist() -> None:
    names = {c.path.name for c in find_cases() if c.codec.name == "openai_responses"}
    assert names >= REQUIRED, REQUIRED - names
    assert len(names) >= 30
    into = {c.codec.name for c in find_cases() if c.target is CODEC}
    assert {"openai_chat", "anthropic_messages"} <= into


@pytest.mark.parametrize(
    ("extra", "param"), [({"n": 2}, "n"), ({"stop": ["END"]}, "stop")], ids=["n_above_one", "stop_sequences"]
)
def test_encode_refuses_what_responses_cannot_honour(extra: dict[str, object], param: str) -> None:
    hub = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(CodecError) as caught:
        CODEC.encode_request(hub, "gpt-4.1")
    assert (caught.value.error.status, caught.value.error.param) == (400, param)


def test_stateless_requests_are_400s_in_the_clients_format() -> None:
    body = b'{"model": "gpt-4.1", "input": "again", "previous_response_id": "resp_1"}'
    req = translator_pb2.TranslateRequestIn(
        source=common_pb2.FORMAT_OPENAI_RESPONSES, target=common_pb2.FORMAT_OPENAI_CHAT, body=body
    )
    out = pipeline.translate_request(CODECS, req)
    assert (out.error.status, out.error.param) == (400, "previous_response_id")
    rendered = pipeline.render_error(CODECS, translator_pb2.RenderErrorIn(target=req.source, error=out.error))
    assert rendered.body.startswith(b'{"error":{"message":"\'previous_response_id\' is not supported')


@pytest.mark.parametrize("seed", range(10))
def test_chat_provider_stream_reaches_a_responses_client_whole(seed: int) -> None:
    setup = translator_pb2.StreamSetup(
        source=common_pb2.FORMAT_OPENAI_CHAT,
        target=common_pb2.FORMAT_OPENAI_RESPONSES,
        model="gpt-4.1",
        request_id="r",
        created_unix=1,
    )
    session = pipeline.open_stream(CODECS, setup)
    assert isinstance(session, StreamSession)
    body = (DEFAULT_ROOT / "openai_chat" / "pair_to_openai_responses_stream" / "native.sse").read_bytes()
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(body)), 12))
    replies = [session.feed(body[a:b]) for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    last = session.finish()
    out = b"".join(r.data for r in replies if r is not None) + last.data
    assert last.complete and last.usage.input_tokens == 11
    assert sum(r.content_started for r in replies if r is not None) == 1
    final = check_stream(out, complete=True)
    assert final is not None and final.output_text == "Checking."
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call"]
