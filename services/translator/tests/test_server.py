"""The real grpc.aio server on a free port, exercising all four RPCs over the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from prometheus_client import CollectorRegistry

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core import jsonx
from omniroute_core.grpcx import Server, insecure_channel, wait_healthy
from omniroute_translator.codecs import CODECS
from omniroute_translator.codecs.openai_chat import OpenAIChatCodec
from omniroute_translator.goldens import DEFAULT_ROOT
from omniroute_translator.metrics import TranslatorMetrics
from omniroute_translator.pipeline import CodecTable
from omniroute_translator.server import SERVICE_NAME, TranslatorService, add_to_server

OPENAI = common_pb2.FORMAT_OPENAI_CHAT
# Until a second codec exists, GEMINI stands for "another format" spoken with OpenAI's codec, so that the
# translating (non-pass-through) paths run over the wire too.
OTHER = common_pb2.FORMAT_GEMINI
TABLE: CodecTable = {**CODECS, OTHER: OpenAIChatCodec()}
STREAM = (DEFAULT_ROOT / "openai_chat" / "stream_usage_chunk" / "native.sse").read_bytes()


@pytest.fixture(scope="module")
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture(scope="module")
async def address(registry: CollectorRegistry) -> AsyncIterator[str]:
    server = Server("127.0.0.1:0", [SERVICE_NAME])
    add_to_server(TranslatorService(TABLE, TranslatorMetrics(registry)), server.server)
    await server.start()
    addr = f"127.0.0.1:{server.port}"
    assert await wait_healthy(addr, service=SERVICE_NAME)
    yield addr
    await server.stop(grace=0.5)


@pytest.fixture
async def stub(address: str) -> AsyncIterator[translator_pb2_grpc.TranslatorAsyncStub]:
    async with insecure_channel(address) as channel:
        yield translator_pb2_grpc.TranslatorStub(channel)


async def test_translate_request(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
    reply = await stub.TranslateRequest(
        translator_pb2.TranslateRequestIn(source=OPENAI, target=OPENAI, body=body, model="openai/gpt-4o")
    )
    assert reply.body == body.replace(b'"gpt-4o"', b'"openai/gpt-4o"')
    assert (reply.model, reply.stream, reply.HasField("error")) == ("gpt-4o", False, False)


async def test_unsupported_pair_is_an_error_in_the_reply(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    reply = await stub.TranslateRequest(
        translator_pb2.TranslateRequestIn(source=common_pb2.FORMAT_UNSPECIFIED, target=OPENAI, body=b"{}", model="m")
    )
    assert reply.error.status == 400
    assert "'unspecified'" in reply.error.message


async def test_translate_response_usage(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    body = (DEFAULT_ROOT / "openai_chat" / "usage_cached_reasoning" / "native.json").read_bytes()
    reply = await stub.TranslateResponse(
        translator_pb2.TranslateResponseIn(source=OPENAI, target=OPENAI, body=body, model="m", request_id="r")
    )
    assert reply.body == body
    assert reply.usage == common_pb2.Usage(
        input_tokens=2006, output_tokens=300, cached_input_tokens=1920, reasoning_tokens=256, total_tokens=2306
    )


async def test_render_error(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    err = common_pb2.Error(status=429, type="rate_limit_error", message="slow down")
    reply = await stub.RenderError(translator_pb2.RenderErrorIn(target=OPENAI, error=err, in_stream=True))
    assert reply.content_type == "text/event-stream"
    assert jsonx.loads(reply.body.removeprefix(b"data: "))["error"]["message"] == "slow down"


def _odd_batches(data: bytes) -> Iterator[bytes]:
    sizes = [1, 7, 3, 64, 2, 129, 5]
    pos, i = 0, 0
    while pos < len(data):
        yield data[pos : pos + sizes[i % len(sizes)]]
        pos += sizes[i % len(sizes)]
        i += 1


async def _messages(setup: translator_pb2.StreamSetup, data: bytes) -> AsyncIterator[translator_pb2.StreamIn]:
    yield translator_pb2.StreamIn(setup=setup)
    for batch in _odd_batches(data):
        yield translator_pb2.StreamIn(data=batch)


async def test_stream_same_format_passes_bytes_in_odd_batches(
    stub: translator_pb2_grpc.TranslatorAsyncStub,
) -> None:
    setup = translator_pb2.StreamSetup(source=OPENAI, target=OPENAI, model="alias", request_id="r", created_unix=1)
    replies = [r async for r in stub.TranslateStream(_messages(setup, STREAM))]
    assert b"".join(r.data for r in replies) == STREAM
    assert [r.done for r in replies].count(True) == 1
    assert replies[-1].done
    assert replies[-1].complete
    assert replies[-1].usage == common_pb2.Usage(
        input_tokens=20, output_tokens=2, cached_input_tokens=16, total_tokens=22
    )
    assert [r.content_started for r in replies].count(True) == 1
    # the flag is on the batch that completes the first content event (its bytes may have begun earlier)
    started = next(i for i, r in enumerate(replies) if r.content_started)
    event = next(e for e in STREAM.split(b"\n\n") if b'"content":"Hi"' in e) + b"\n\n"
    assert event in b"".join(r.data for r in replies[: started + 1])
    assert event not in b"".join(r.data for r in replies[:started])


async def test_stream_translating_in_odd_batches(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    # the golden case's own context, so the output must equal its out.sse byte for byte
    setup = translator_pb2.StreamSetup(
        source=OTHER, target=OPENAI, model="gpt-4o-mini", request_id="req_golden", created_unix=1767225600
    )
    replies = [r async for r in stub.TranslateStream(_messages(setup, STREAM))]
    expected = (DEFAULT_ROOT / "openai_chat" / "stream_usage_chunk" / "out.sse").read_bytes()
    assert b"".join(r.data for r in replies) == expected
    assert all(r.data for r in replies[:-1])  # no empty replies: a batch completing nothing sends nothing
    assert len(replies) < len(list(_odd_batches(STREAM)))
    assert replies[-1].done and replies[-1].complete
    assert replies[-1].usage.cached_input_tokens == 16
    assert [r.content_started for r in replies].count(True) == 1


async def test_stream_several_events_in_one_batch_make_one_reply(
    stub: translator_pb2_grpc.TranslatorAsyncStub,
) -> None:
    setup = translator_pb2.StreamSetup(source=OTHER, target=OPENAI, model="alias", request_id="r", created_unix=1)

    async def one_batch() -> AsyncIterator[translator_pb2.StreamIn]:
        yield translator_pb2.StreamIn(setup=setup)
        yield translator_pb2.StreamIn(data=STREAM)

    replies = [r async for r in stub.TranslateStream(one_batch())]
    assert len(replies) == 2
    assert replies[0].data.count(b"data: ") == STREAM.count(b"data: ")
    assert replies[0].content_started and not replies[0].done
    assert replies[1].done and replies[1].data == b""


async def test_translate_response_via_hub(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    body = (DEFAULT_ROOT / "openai_chat" / "think_tags_to_reasoning" / "native.json").read_bytes()
    reply = await stub.TranslateResponse(
        translator_pb2.TranslateResponseIn(source=OTHER, target=OPENAI, body=body, model="alias", request_id="r")
    )
    message = jsonx.loads(reply.body)["choices"][0]["message"]
    assert (message["content"], jsonx.loads(reply.body)["model"]) == ("The answer is 4.", "alias")
    assert "2+2" in message["reasoning_content"]
    assert reply.usage.total_tokens == 30


async def test_stream_setup_errors(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    async def no_setup() -> AsyncIterator[translator_pb2.StreamIn]:
        yield translator_pb2.StreamIn(data=b"data: x\n\n")

    [reply] = [r async for r in stub.TranslateStream(no_setup())]
    assert reply.done and reply.error.status == 400

    setup = translator_pb2.StreamSetup(source=OPENAI, target=common_pb2.FORMAT_UNSPECIFIED)
    [reply] = [r async for r in stub.TranslateStream(_messages(setup, STREAM))]
    assert reply.done
    assert reply.error.status == 400
    assert "'unspecified'" in reply.error.message


async def test_empty_stream_call_returns_nothing(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    async def nothing() -> AsyncIterator[translator_pb2.StreamIn]:
        return
        yield  # pragma: no cover

    assert [r async for r in stub.TranslateStream(nothing())] == []


async def test_metrics_count_calls(stub: translator_pb2_grpc.TranslatorAsyncStub, registry: CollectorRegistry) -> None:
    await stub.RenderError(translator_pb2.RenderErrorIn(target=OPENAI, error=common_pb2.Error(status=500)))
    value = registry.get_sample_value(
        "translator_calls_total", {"rpc": "RenderError", "source": "unspecified", "target": "openai", "outcome": "ok"}
    )
    assert value is not None and value >= 1


async def test_unknown_method_is_unimplemented(address: str) -> None:
    async with insecure_channel(address) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/omniroute.v1.Translator/Nope")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(b"")
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
