"""The engine's outbound policy from the config snapshot: per-provider concurrency limits (a busy provider is a
503 with ``Retry-After`` that moves a combo on and trips no breaker), the proxy settings with ``noProxy``, and
guarded provider addresses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from omniroute_core import grpcx, jsonx
from omniroute_core.catalog import load_catalog
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.proxies import password_aad
from omniroute_core.snapshot import Combo, ComboStep, ConfigSnapshot, ProviderConnection
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.fake_proxy import FakeProxy, basic_auth
from omniroute_executor.engine import Engine
from omniroute_executor.outbound import NetPolicies, limits_from
from omniroute_executor.prepare import Credentials
from omniroute_executor.resilience import HealthStore
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import QueueLimits, Upstream

from .test_engine import request

BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
STREAM_BODY = b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
ONE_AT_A_TIME = {"routing": {"providers": {"openai": {"maxConcurrent": 1, "maxQueued": 0}}}}


@dataclass
class Rig:
    a: FakeOpenAI
    b: FakeOpenAI
    proxy: FakeProxy
    engine: Engine
    cipher: Cipher

    def use(self, settings: dict[str, Any], *, base_a: str = "") -> None:
        conns = (
            ProviderConnection("conn-a", "openai", "a", base_a or self.a.base_url, "", priority=1),
            ProviderConnection("conn-b", "groq", "b", self.b.base_url, ""),
        )
        steps = (ComboStep("openai/gpt-4o"), ComboStep("groq/llama-3.3-70b-versatile"))
        snap = ConfigSnapshot.build(1, conns, (), settings, (Combo("c", "c", "priority", steps, {}),))
        self.engine._snapshot = lambda: snap


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    a, b, proxy = FakeOpenAI(), FakeOpenAI(), FakeProxy()
    for server in (a, b, proxy):
        await server.start()
    cipher = Cipher(generate_encryption_key())
    upstream = Upstream(max_connections=10, connect_timeout_s=1, read_timeout_s=5.0)
    channel = grpcx.insecure_channel("127.0.0.1:9")
    engine = Engine(
        catalog=load_catalog(),
        snapshot=lambda: ConfigSnapshot.build(0, (), (), {}),
        credentials=Credentials(cipher),
        upstream=upstream,
        translator=TranslatorClient(channel),
        publisher=None,
        health=HealthStore(None),
    )
    rig = Rig(a, b, proxy, engine, cipher)
    try:
        yield rig
    finally:
        await upstream.close()
        await channel.close()
        for server in (a, b, proxy):
            await server.stop()


def error_of(data: bytes) -> dict[str, Any]:
    error: dict[str, Any] = jsonx.loads(data)["error"]
    return error


async def _while_one_is_slow(rig: Rig, model: str, body: bytes = BODY, *, stream: bool = False) -> Any:
    rig.a.script.append(Reply(json=rig.a.completion("gpt-4o"), delay_s=0.5))
    slow = asyncio.create_task(rig.engine.execute(request(BODY, model="openai/gpt-4o")))
    await asyncio.sleep(0.15)
    if stream:
        second: Any = [c async for c in rig.engine.execute_stream(request(body, model=model, stream=True))]
    else:
        second = await rig.engine.execute(request(body, model=model))
    assert (await slow).status == 200
    return second


async def test_a_busy_provider_answers_503_with_retry_after_and_trips_nothing(rig: Rig) -> None:
    rig.use(ONE_AT_A_TIME)
    reply = await _while_one_is_slow(rig, "openai/gpt-4o")
    assert reply.status == 503 and reply.headers["retry-after"] == "1"
    error = error_of(reply.body)
    assert error["code"] == "upstream_busy" and "concurrency limit" in error["message"]
    assert len(rig.a.requests) == 1  # the refused attempt never reached the provider
    assert rig.engine.health.snapshot() == {}  # no breaker failure, no cooldown
    assert (await rig.engine.execute(request(BODY))).status == 200  # the slot is free again


async def test_a_busy_provider_in_a_combo_falls_back_to_the_next(rig: Rig) -> None:
    rig.use(ONE_AT_A_TIME)
    reply = await _while_one_is_slow(rig, "c")
    assert reply.status == 200 and reply.provider == "groq"
    assert (len(rig.a.requests), len(rig.b.requests)) == (1, 1)
    chunks = await _while_one_is_slow(rig, "c", STREAM_BODY, stream=True)
    assert chunks[0].status == 200 and len(rig.b.requests) == 2


async def test_a_busy_stream_is_a_503_too(rig: Rig) -> None:
    rig.use(ONE_AT_A_TIME)
    chunks = await _while_one_is_slow(rig, "openai/gpt-4o", STREAM_BODY, stream=True)
    assert [c.status for c in chunks] == [503] and chunks[0].headers["retry-after"] == "1"


async def test_requests_go_through_the_configured_proxy_unless_no_proxy_matches(rig: Rig) -> None:
    proxy = {
        "enabled": True,
        "url": rig.proxy.url,
        "username": "u",
        "passwordEnc": rig.cipher.encrypt("secret", aad=password_aad()),
        "noProxy": [],
        "providers": {"groq": {"enabled": False}},
    }
    rig.use({"proxy": proxy})
    assert (await rig.engine.execute(request(BODY, model="openai/gpt-4o"))).status == 200
    assert [s.target for s in rig.proxy.seen] == [rig.a.base_url + "/chat/completions"]
    assert rig.proxy.seen[0].proxy_authorization == "Basic dTpzZWNyZXQ="  # u:secret
    assert (await rig.engine.execute(request(BODY, model="groq/llama-3.3-70b-versatile"))).status == 200
    assert len(rig.proxy.seen) == 1 and len(rig.b.requests) == 1  # groq opted out
    rig.use({"proxy": {**proxy, "noProxy": ["localhost", "127.0.0.0/8"]}})
    assert (await rig.engine.execute(request(BODY, model="openai/gpt-4o"))).status == 200
    assert len(rig.proxy.seen) == 1 and len(rig.a.requests) == 2


async def test_a_metadata_base_url_is_a_502_that_moves_on(rig: Rig) -> None:
    rig.use({}, base_a="http://169.254.169.254/v1")
    reply = await rig.engine.execute(request(BODY, model="openai/gpt-4o"))
    assert reply.status == 502 and error_of(reply.body)["code"] == "address_refused"
    assert "169.254.169.254 is a cloud metadata address" in error_of(reply.body)["message"]
    assert rig.engine.health.snapshot() == {}
    fallback = await rig.engine.execute(request(BODY, model="c"))
    assert fallback.status == 200 and fallback.provider == "groq"


def test_limits_come_from_the_routing_settings_over_the_defaults() -> None:
    defaults = QueueLimits(max_concurrent=100, max_queued=50, queue_timeout_s=30, retry_after_ms=2000)
    routing = {
        "providers": {
            "openai": {"maxConcurrent": 2, "queueTimeoutMs": 1500},
            "groq": {"accountStrategy": "random"},
            "bad": {"maxConcurrent": 0, "maxQueued": True},
        }
    }
    assert limits_from(routing, defaults) == {
        "openai": QueueLimits(max_concurrent=2, max_queued=50, queue_timeout_s=1.5, retry_after_ms=2000)
    }
    policies = NetPolicies(None, defaults)
    snap = ConfigSnapshot.build(3, (), (), {"routing": routing})
    assert policies.for_snapshot(snap) is policies.for_snapshot(snap)
    assert policies.for_snapshot(snap).limits_for("groq") is None


async def test_a_proxy_password_without_a_user_name_is_sent(rig: Rig) -> None:
    rig.proxy.required_auth = basic_auth("", "token-as-password")
    proxy = {
        "enabled": True,
        "url": rig.proxy.url,
        "passwordEnc": rig.cipher.encrypt("token-as-password", aad=password_aad()),
    }
    rig.use({"proxy": proxy})
    assert (await rig.engine.execute(request(BODY, model="openai/gpt-4o"))).status == 200
    assert rig.proxy.seen[-1].proxy_authorization == basic_auth("", "token-as-password")
