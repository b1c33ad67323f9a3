"""Fixtures: an engine wired to a fake OpenAI upstream, with a snapshot holding one encrypted connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from omniroute_core import grpcx
from omniroute_core.catalog import load_catalog
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.snapshot import ConfigSnapshot, ProviderConnection
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_executor.engine import Engine, EventSink
from omniroute_executor.prepare import Credentials
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream

UPSTREAM_KEY = "sk-upstream-secret"


@dataclass
class Rig:
    engine: Engine
    fake: FakeOpenAI
    upstream: Upstream
    snapshot: ConfigSnapshot


def snapshot_for(base_url: str, cipher: Cipher) -> ConfigSnapshot:
    conn = ProviderConnection(
        id="conn-1",
        provider="openai",
        name="main",
        base_url=base_url,
        api_key_enc=cipher.encrypt(UPSTREAM_KEY, aad="conn-1"),
        headers={"X-Custom": "1"},
    )
    return ConfigSnapshot.build(1, (conn,), (), {})


def engine_for(
    snapshot: ConfigSnapshot,
    cipher: Cipher,
    upstream: Upstream,
    channel: grpc.aio.Channel,
    publisher: EventSink | None = None,
) -> Engine:
    """An engine on the shipped catalog and one fixed snapshot, its translator on ``channel``."""
    return Engine(
        catalog=load_catalog(),
        snapshot=lambda: snapshot,
        credentials=Credentials(cipher),
        upstream=upstream,
        translator=TranslatorClient(channel),
        publisher=publisher,
    )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fake = FakeOpenAI()
    await fake.start()
    cipher = Cipher(generate_encryption_key())
    snap = snapshot_for(fake.base_url, cipher)
    upstream = Upstream(max_connections=10, connect_timeout_s=2, read_timeout_s=1.0)
    channel = grpcx.insecure_channel("127.0.0.1:9")  # never called for OpenAI-format clients
    engine = engine_for(snap, cipher, upstream, channel)
    try:
        yield Rig(engine, fake, upstream, snap)
    finally:
        await upstream.close()
        await channel.close()
        await fake.stop()
