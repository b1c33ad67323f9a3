"""Anthropic streams through the pipeline's StreamSession (what the gRPC stream runs): an OpenAI provider stream
served to an Anthropic client folds into the right ``Message`` in the official SDK whatever the batch split, and
the same-format path forwards bytes untouched while still reading usage (cache tokens included)."""

from __future__ import annotations

import random

from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from omniroute.v1 import common_pb2, translator_pb2
from omniroute_core import jsonx
from omniroute_translator import pipeline
from omniroute_translator.codecs import CODECS
from omniroute_translator.goldens import DEFAULT_ROOT
from omniroute_translator.pipeline import StreamSession

_EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


def _session(source: common_pb2.Format.ValueType, target: common_pb2.Format.ValueType) -> StreamSession:
    setup = translator_pb2.StreamSetup(source=source, target=target, model="claude-x", request_id="r", created_unix=1)
    session = pipeline.open_stream(CODECS, setup)
    assert isinstance(session, StreamSession)
    return session


def _run(session: StreamSession, body: bytes, seed: int) -> tuple[list[translator_pb2.StreamOut], bytes]:
    rng = random.Random(seed)
    replies, pos = [], 0
    while pos < len(body):
        size = rng.randint(1, 64)
        reply = session.feed(body[pos : pos + size])
        pos += size
        if reply is not None:
            replies.append(reply)
    replies.append(session.finish())
    return replies, b"".join(r.data for r in replies)


def _message(sse: bytes) -> Message:
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for block in sse.split(b"\n\n"):
        if block:
            data = block.split(b"\n")[1].removeprefix(b"data: ")
            snapshot = accumulate_event(
                event=_EVENTS.validate_python(jsonx.loads(data)), current_snapshot=snapshot, json_bufs=json_bufs
            )
    assert snapshot is not None
    return Message.model_validate(snapshot.model_dump())


def test_openai_provider_stream_reaches_an_anthropic_client() -> None:
    body = (DEFAULT_ROOT / "openai_chat" / "pair_to_anthropic_messages_stream" / "native.sse").read_bytes()
    for seed in range(10):
        session = _session(common_pb2.FORMAT_OPENAI_CHAT, common_pb2.FORMAT_ANTHROPIC_MESSAGES)
        replies, sse = _run(session, body, seed)
        message = _message(sse)
        assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
        assert [getattr(b, "input", None) for b in message.content[1:]] == [{"city": "Paris"}, {"city": "Rome"}]
        assert message.stop_reason == "tool_use"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (80, 20)
        assert sum(r.content_started for r in replies) == 1
        assert replies[-1].done and replies[-1].complete
        assert sse.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_same_format_anthropic_stream_passes_bytes_and_reads_cache_usage() -> None:
    body = (DEFAULT_ROOT / "anthropic_messages" / "stream_usage_cache" / "native.sse").read_bytes()
    session = _session(common_pb2.FORMAT_ANTHROPIC_MESSAGES, common_pb2.FORMAT_ANTHROPIC_MESSAGES)
    replies, out = _run(session, body, 0)
    assert out == body
    usage = replies[-1].usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_creation_tokens) == (3510, 3000, 500)
    assert usage.output_tokens == 3
    assert replies[-1].complete
