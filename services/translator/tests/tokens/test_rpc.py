"""``CountTokens``: the pure operation (reply shapes, errors) and the RPC over a real grpc.aio server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core import jsonx
from omniroute_core.grpcx import Server, insecure_channel, wait_healthy
from omniroute_translator.codecs import CODECS
from omniroute_translator.metrics import TranslatorMetrics
from omniroute_translator.server import SERVICE_NAME, TranslatorService, add_to_server
from omniroute_translator.tokens import Tokenizers, count_tokens

ANTHROPIC = common_pb2.FORMAT_ANTHROPIC_MESSAGES
BODY = jsonx.dumps({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hello, Claude"}]})


def test_anthropic_reply_shape_and_family(tokenizers: Tokenizers) -> None:
    reply = count_tokens(CODECS, tokenizers, translator_pb2.CountTokensIn(source=ANTHROPIC, body=BODY))
    assert not reply.HasField("error")
    # 3 priming + 3 framing + "user" (1) + "Hello", ",", " Claude" (3)
    assert reply.input_tokens == 10
    assert jsonx.loads(reply.body) == {"input_tokens": 10}
    assert (reply.content_type, reply.encoding, reply.family) == ("application/json", "o200k_base", "anthropic-claude")


def test_the_callers_model_picks_the_family(tokenizers: Tokenizers) -> None:
    """The executor passes the resolved upstream model: an alias in the body does not decide the tokenizer."""
    reply = count_tokens(CODECS, tokenizers, translator_pb2.CountTokensIn(source=ANTHROPIC, body=BODY, model="gpt-4"))
    assert (reply.encoding, reply.family) == ("cl100k_base", "openai-cl100k")


def test_gemini_reply_shape(tokenizers: Tokenizers) -> None:
    body = jsonx.dumps({"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]})
    reply = count_tokens(
        CODECS,
        tokenizers,
        translator_pb2.CountTokensIn(source=common_pb2.FORMAT_GEMINI, body=body, model="gemini-2.5-flash"),
    )
    assert jsonx.loads(reply.body) == {"totalTokens": reply.input_tokens}
    assert reply.input_tokens > 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"not json", ""),
        (jsonx.dumps({"model": "claude-sonnet-4-5"}), "messages"),
        (jsonx.dumps({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [{"x": 1}]}]}), None),
    ],
)
def test_malformed_bodies_are_400s(tokenizers: Tokenizers, body: bytes, param: str | None) -> None:
    reply = count_tokens(CODECS, tokenizers, translator_pb2.CountTokensIn(source=ANTHROPIC, body=body))
    assert reply.error.status == 400
    assert reply.error.type == "invalid_request_error"
    if param is not None:
        assert reply.error.param == param
    assert not reply.body


def test_formats_without_a_count_endpoint_are_400s(tokenizers: Tokenizers) -> None:
    for fmt in (common_pb2.FORMAT_OPENAI_CHAT, common_pb2.FORMAT_OLLAMA_CHAT, common_pb2.FORMAT_UNSPECIFIED):
        reply = count_tokens(CODECS, tokenizers, translator_pb2.CountTokensIn(source=fmt, body=BODY))
        assert (reply.error.status, reply.error.code) == (400, "unsupported_format")


@pytest.fixture(scope="module")
async def stub(tokenizers: Tokenizers) -> AsyncIterator[translator_pb2_grpc.TranslatorAsyncStub]:
    server = Server("127.0.0.1:0", [SERVICE_NAME])
    add_to_server(TranslatorService(CODECS, TranslatorMetrics(CollectorRegistry()), tokenizers), server.server)
    await server.start()
    addr = f"127.0.0.1:{server.port}"
    assert await wait_healthy(addr, service=SERVICE_NAME)
    async with insecure_channel(addr) as channel:
        yield translator_pb2_grpc.TranslatorStub(channel)
    await server.stop(grace=0.5)


async def test_count_tokens_over_grpc(stub: translator_pb2_grpc.TranslatorAsyncStub) -> None:
    reply = await stub.CountTokens(translator_pb2.CountTokensIn(source=ANTHROPIC, body=BODY))
    assert jsonx.loads(reply.body) == {"input_tokens": 10}
    bad = await stub.CountTokens(translator_pb2.CountTokensIn(source=ANTHROPIC, body=b"{}"))
    assert bad.error.status == 400
