"""Azure OpenAI: deployment URLs, the ``api-version`` query (catalog default, per-connection override), the
``api-key`` header, and a connection without its resource endpoint refused clearly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from omniroute.v1 import common_pb2, executor_pb2
from omniroute_core import grpcx, jsonx
from omniroute_core.catalog import load_catalog
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.snapshot import ConfigSnapshot, ProviderConnection
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_executor.engine import Engine
from omniroute_executor.prepare import Credentials
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream

KEY = "azure-key-0123456789"


def _request(
    model: str, *, stream: bool = False, operation: int = common_pb2.OPERATION_CHAT
) -> executor_pb2.ExecuteRequest:
    meta = common_pb2.RequestMeta(
        request_id="req-az",
        client_format=common_pb2.FORMAT_OPENAI_CHAT,
        operation=operation,  # type: ignore[arg-type]
        model=model,
        stream=stream,
        endpoint="/v1/chat/completions",
    )
    body = jsonx.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    return executor_pb2.ExecuteRequest(meta=meta, body=body)


async def _engine(fake: FakeOpenAI, upstream: Upstream, *conns: ProviderConnection, cipher: Cipher) -> Engine:
    snap = ConfigSnapshot.build(1, conns, (), {})
    return Engine(
        catalog=load_catalog(),
        snapshot=lambda: snap,
        credentials=Credentials(cipher),
        upstream=upstream,
        translator=TranslatorClient(grpcx.insecure_channel("127.0.0.1:9")),
        publisher=None,
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    client = Upstream(max_connections=4, connect_timeout_s=2, read_timeout_s=2)
    try:
        yield client
    finally:
        await client.close()


def _conn(cipher: Cipher, base_url: str, options: dict[str, str] | None = None) -> ProviderConnection:
    return ProviderConnection(
        id="az-1",
        provider="azure",
        name="westeurope",
        base_url=base_url,
        api_key_enc=cipher.encrypt(KEY, aad="az-1"),
        options=options or {},
    )


async def test_chat_goes_to_the_deployment_with_the_default_api_version(fake: FakeOpenAI, upstream: Upstream) -> None:
    cipher = Cipher(generate_encryption_key())
    engine = await _engine(fake, upstream, _conn(cipher, fake.base_url.removesuffix("/v1") + "/openai"), cipher=cipher)
    reply = await engine.execute(_request("azure/prod-gpt4o"))
    assert reply.status == 200, reply.body
    sent = fake.requests[-1]
    assert sent.path == "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    assert sent.headers["api-key"] == KEY
    assert "Authorization" not in sent.headers
    assert (reply.provider, reply.model) == ("azure", "prod-gpt4o")


async def test_a_connection_chooses_its_api_version_for_streams_too(fake: FakeOpenAI, upstream: Upstream) -> None:
    cipher = Cipher(generate_encryption_key())
    conn = _conn(cipher, fake.base_url.removesuffix("/v1") + "/openai", {"apiVersion": "2025-01-01-preview"})
    engine = await _engine(fake, upstream, conn, cipher=cipher)
    chunks = [c async for c in engine.execute_stream(_request("aoai/prod-gpt4o", stream=True))]
    assert chunks[0].status == 200
    assert b"data: [DONE]" in b"".join(c.data for c in chunks)
    assert fake.requests[-1].path == "/openai/deployments/prod-gpt4o/chat/completions?api-version=2025-01-01-preview"


async def test_a_connection_without_its_endpoint_is_refused_without_a_request(
    fake: FakeOpenAI, upstream: Upstream
) -> None:
    cipher = Cipher(generate_encryption_key())
    engine = await _engine(fake, upstream, _conn(cipher, ""), cipher=cipher)
    reply = await engine.execute(_request("azure/prod-gpt4o"))
    assert reply.status == 500
    assert b"has no base URL" in reply.body
    assert fake.requests == []
