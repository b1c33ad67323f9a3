"""``OPERATION_COUNT_TOKENS``: the translator counts, no provider is called, replies and errors are the
translator's client-format bytes. A fake translator servicer records what the executor asks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from omniroute.v1 import common_pb2, executor_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core import grpcx
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_executor.engine import Engine
from omniroute_executor.upstream import Upstream

from .conftest import Rig, engine_for, snapshot_for

ANTHROPIC = common_pb2.FORMAT_ANTHROPIC_MESSAGES
BODY = b'{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'


@dataclass
class FakeTranslator(translator_pb2_grpc.TranslatorServicer):
    """Only the two RPCs a count uses; the generated base answers UNIMPLEMENTED to the others."""

    counts: list[translator_pb2.CountTokensIn] = field(default_factory=list)
    reply: translator_pb2.CountTokensOut = field(
        default_factory=lambda: translator_pb2.CountTokensOut(
            input_tokens=12, body=b'{"input_tokens":12}', content_type="application/json", encoding="o200k_base"
        )
    )

    async def CountTokens(self, request: translator_pb2.CountTokensIn, context: Any) -> translator_pb2.CountTokensOut:
        self.counts.append(request)
        return self.reply

    async def RenderError(self, request: translator_pb2.RenderErrorIn, context: Any) -> translator_pb2.RenderErrorOut:
        body = b'{"type":"error","error":{"type":"%s","message":"%s"}}' % (
            request.error.type.encode(),
            request.error.message.encode(),
        )
        return translator_pb2.RenderErrorOut(body=body, content_type="application/json")


@dataclass
class CountRig:
    engine: Engine
    translator: FakeTranslator
    rig: Rig


@pytest.fixture
async def counting(rig: Rig) -> AsyncIterator[CountRig]:
    fake = FakeTranslator()  # type: ignore[abstract]  # the stubs mark every RPC abstract; the runtime base does not
    server = grpcx.Server("127.0.0.1:0", [])
    translator_pb2_grpc.add_TranslatorServicer_to_server(fake, server.server)
    await server.start()
    channel = grpcx.insecure_channel(f"127.0.0.1:{server.port}")
    upstream = Upstream(max_connections=2, connect_timeout_s=1, read_timeout_s=1.0)
    cipher = Cipher(generate_encryption_key())
    snap = snapshot_for(rig.fake.base_url, cipher)
    engine = engine_for(snap, cipher, upstream, channel)
    try:
        yield CountRig(engine, fake, rig)
    finally:
        await upstream.close()
        await channel.close()
        await server.stop(grace=0.1)


def count_request(body: bytes = BODY, model: str = "openai/gpt-4o") -> executor_pb2.ExecuteRequest:
    meta = common_pb2.RequestMeta(
        request_id="req-c",
        client_format=ANTHROPIC,
        operation=common_pb2.OPERATION_COUNT_TOKENS,
        model=model,
        endpoint="/v1/messages/count_tokens",
    )
    return executor_pb2.ExecuteRequest(meta=meta, body=body)


async def test_count_is_the_translators_reply_and_no_provider_is_called(counting: CountRig) -> None:
    before = len(counting.rig.fake.requests)
    reply = await counting.engine.execute(count_request())
    assert (reply.status, reply.content_type, reply.body) == (200, "application/json", b'{"input_tokens":12}')
    assert reply.headers["x-omniroute-token-encoding"] == "o200k_base"
    assert (reply.provider, reply.model, reply.usage.input_tokens) == ("openai", "gpt-4o", 12)
    sent = counting.translator.counts[-1]
    # the resolved upstream model (prefix stripped) picks the tokenizer; the body goes untouched
    assert (sent.source, sent.body, sent.model) == (ANTHROPIC, BODY, "gpt-4o")
    assert len(counting.rig.fake.requests) == before


async def test_a_streaming_call_gets_the_count_as_its_only_chunk(counting: CountRig) -> None:
    chunks = [c async for c in counting.engine.execute_stream(count_request())]
    assert [(c.status, c.data) for c in chunks] == [(200, b'{"input_tokens":12}')]


async def test_unknown_model_is_the_chat_resolution_error_in_the_clients_format(counting: CountRig) -> None:
    reply = await counting.engine.execute(count_request(model="nosuchprovider/some-model"))
    assert reply.status == 404
    assert reply.body.startswith(b'{"type":"error"')
    assert b"not found" in reply.body
    assert not counting.translator.counts


async def test_a_malformed_body_is_the_translators_error_rendered_for_the_client(counting: CountRig) -> None:
    counting.translator.reply = translator_pb2.CountTokensOut(
        error=common_pb2.Error(status=400, type="invalid_request_error", message="messages: required")
    )
    reply = await counting.engine.execute(count_request(body=b'{"model": "openai/gpt-4o"}'))
    assert reply.status == 400
    assert reply.body == b'{"type":"error","error":{"type":"invalid_request_error","message":"messages: required"}}'
