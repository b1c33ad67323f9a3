"""The retry/fallback loop against real fake upstreams: order, retry counts, final status, one usage event per
attempt, streams falling back before their first byte, breakers and cooldowns skipping targets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from omniroute.v1 import executor_pb2, usage_pb2
from omniroute_core import grpcx, jsonx
from omniroute_core.catalog import load_catalog
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.snapshot import Combo, ComboStep, ConfigSnapshot, ProviderConnection
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.servers import free_port
from omniroute_executor.engine import Engine
from omniroute_executor.prepare import Credentials
from omniroute_executor.resilience import HealthStore
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream

from .test_engine import request

BODY = b'{"model": "c", "messages": [{"role": "user", "content": "hi"}]}'
STREAM_BODY = b'{"model": "c", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'


@dataclass
class Events:
    seen: list[usage_pb2.UsageEvent] = field(default_factory=list)

    def emit(self, event: usage_pb2.UsageEvent) -> None:
        self.seen.append(event)

    def table(self) -> list[tuple[int, str, int, str]]:
        return [(e.attempt, e.connection_id, e.status, e.combo) for e in self.seen]


@dataclass
class Rig:
    a: FakeOpenAI
    b: FakeOpenAI
    engine: Engine
    events: Events
    now: list[int]
    combo_config: dict[str, Any]

    def use(self, *combos: Combo, refused_a: bool = False) -> None:
        base_a = f"http://127.0.0.1:{free_port()}/v1" if refused_a else self.a.base_url
        conns = (
            ProviderConnection("conn-a", "openai", "a", base_a, "", priority=1),
            ProviderConnection("conn-b", "groq", "b", self.b.base_url, ""),
        )
        snap = ConfigSnapshot.build(1, conns, (), {}, combos)
        self.engine._snapshot = lambda: snap


def combo(strategy: str = "priority", **config: Any) -> Combo:
    steps = (ComboStep("openai/gpt-4o"), ComboStep("groq/llama-3.3-70b-versatile"))
    return Combo("c", "c", strategy, steps, {"retryDelayMs": 10, **config})


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    a, b = FakeOpenAI(), FakeOpenAI()
    await a.start()
    await b.start()
    upstream = Upstream(max_connections=10, connect_timeout_s=1, read_timeout_s=1.0)
    channel = grpcx.insecure_channel("127.0.0.1:9")
    events = Events()
    now = [1_000_000]
    engine = Engine(
        catalog=load_catalog(),
        snapshot=lambda: ConfigSnapshot.build(0, (), (), {}),
        credentials=Credentials(Cipher(generate_encryption_key())),
        upstream=upstream,
        translator=TranslatorClient(channel),
        publisher=events,
        health=HealthStore(None, clock_ms=lambda: now[0]),
    )
    rig = Rig(a, b, engine, events, now, {})
    rig.use(combo())
    try:
        yield rig
    finally:
        await upstream.close()
        await channel.close()
        await a.stop()
        await b.stop()


def error_of(reply: executor_pb2.ExecuteReply | executor_pb2.ExecuteChunk) -> dict[str, Any]:
    data = reply.body if isinstance(reply, executor_pb2.ExecuteReply) else reply.data
    error: dict[str, Any] = jsonx.loads(data)["error"]
    return error


async def test_500_is_retried_then_the_next_target_serves(rig: Rig) -> None:
    rig.use(combo(maxRetries=1))
    rig.a.script.extend([Reply(status=500, raw=b"boom"), Reply(status=502, raw=b"bad gateway")])
    reply = await rig.engine.execute(request(BODY, model="c"))
    assert reply.status == 200 and reply.provider == "groq"
    assert (len(rig.a.requests), len(rig.b.requests)) == (2, 1)
    assert rig.b.requests[0].json["model"] == "llama-3.3-70b-versatile"
    assert rig.events.table() == [(1, "conn-a", 500, "c"), (2, "conn-a", 502, "c"), (3, "conn-b", 200, "c")]
    assert rig.events.seen[2].usage.input_tokens == 11 and rig.events.seen[0].usage.input_tokens == 0


async def test_429_honours_a_short_retry_after_on_the_same_target(rig: Rig) -> None:
    rig.use(combo(maxRetries=1))
    rig.a.script.append(Reply(status=429, json={"error": {"message": "slow"}}, headers={"Retry-After": "0.05"}))
    reply = await rig.engine.execute(request(BODY, model="c"))
    assert reply.status == 200 and reply.provider == "openai"
    assert [e.status for e in rig.events.seen] == [429, 200]


async def test_429_with_a_long_retry_after_moves_on_and_cools_the_connection(rig: Rig) -> None:
    rig.use(combo(maxRetries=3, maxRetryAfterMs=1000))
    rig.a.script.append(Reply(status=429, json={"error": {"message": "slow"}}, headers={"Retry-After": "30"}))
    reply = await rig.engine.execute(request(BODY, model="c"))
    assert reply.status == 200 and reply.provider == "groq"
    assert len(rig.a.requests) == 1
    # while cooling down, conn-a is not even tried
    await rig.engine.execute(request(BODY, model="c"))
    assert len(rig.a.requests) == 1 and len(rig.b.requests) == 2
    rig.now[0] += 30_001
    await rig.engine.execute(request(BODY, model="c"))
    assert len(rig.a.requests) == 2


async def test_hang_hits_the_per_target_timeout_then_falls_back(rig: Rig) -> None:
    rig.use(combo(timeoutMs=300))
    rig.a.script.append(Reply(hang=True))
    reply = await rig.engine.execute(request(BODY, model="c"))
    assert reply.status == 200 and reply.provider == "groq"
    first = rig.events.seen[0]
    assert (first.connection_id, first.status, first.error_type) == ("conn-a", 504, "timeout_error")


async def test_refused_connection_falls_back(rig: Rig) -> None:
    rig.use(combo(), refused_a=True)
    reply = await rig.engine.execute(request(BODY, model="c"))
    assert reply.status == 200 and reply.provider == "groq"
    assert [e.status for e in rig.events.seen] == [502, 200]


@pytest.mark.parametrize(("status", "tried_b"), [(400, False), (422, False), (413, False), (401, True), (404, True)])
async def test_request_errors_stop_and_account_errors_move_on(rig: Rig, status: int, tried_b: bool) -> None:
    rig.use(combo(maxRetries=2))
    rig.a.script.append(Reply(status=status, json={"error": {"message": "no", "type": "x"}}))
    reply = await rig.engine.execute(request(BODY, model="c"))
    assert len(rig.a.requests) == 1  # never retried
    assert (len(rig.b.requests) == 1) is tried_b
    assert reply.status == (200 if tried_b else status)


async def test_all_failing_answer_the_last_status_with_the_earliest_retry_after(rig: Rig) -> None:
    rig.use(combo(maxRetryAfterMs=0))
    rig.a.script.append(Reply(status=429, json={"error": {"message": "a"}}, headers={"Retry-After": "20"}))
    rig.b.script.append(Reply(status=503, json={"error": {"message": "b"}}, headers={"Retry-After": "5"}))
    reply = await rig.engine.execute(request(BODY, model="c"))
    assert reply.status == 503
    assert reply.headers["retry-after"] == "5"
    assert error_of(reply)["message"] == "b"
    assert [e.attempt for e in rig.events.seen] == [1, 2]


async def test_attempt_cap(rig: Rig) -> None:
    rig.use(combo(maxRetries=5, maxAttempts=2))
    rig.a.script.extend([Reply(status=500, raw=b"x")] * 3)
    reply = await rig.engine.execute(request(BODY, model="c"))
    assert reply.status == 500 and len(rig.a.requests) == 2 and rig.b.requests == []


async def test_stream_falls_back_before_its_first_byte(rig: Rig) -> None:
    rig.a.script.append(Reply(events=[], terminal=False))  # an upstream stream that ends at once, no [DONE]
    chunks = [c async for c in rig.engine.execute_stream(request(STREAM_BODY, model="c", stream=True))]
    assert chunks[0].status == 200
    assert b"".join(c.data for c in chunks).endswith(b"data: [DONE]\n\n")
    assert [(e.connection_id, e.status) for e in rig.events.seen] == [("conn-a", 502), ("conn-b", 200)]


async def test_stream_500_falls_back(rig: Rig) -> None:
    rig.a.script.append(Reply(status=500, raw=b"oops"))
    chunks = [c async for c in rig.engine.execute_stream(request(STREAM_BODY, model="c", stream=True))]
    assert chunks[0].status == 200 and len(rig.b.requests) == 1


async def test_stream_cut_after_the_first_byte_ends_with_an_error_event_and_no_fallback(rig: Rig) -> None:
    rig.a.script.append(Reply(events=rig.a.chunks("gpt-4o", include_usage=False)[:2], terminal=False))
    chunks = [c async for c in rig.engine.execute_stream(request(STREAM_BODY, model="c", stream=True))]
    assert chunks[0].status == 200
    assert jsonx.loads(chunks[-1].data[6:])["error"]["type"] == "upstream_error"
    assert rig.b.requests == []
    assert [e.status for e in rig.events.seen] == [502]


async def test_breaker_opens_then_half_opens_with_one_probe(rig: Rig) -> None:
    rig.use()
    direct = request(b'{"model": "openai/gpt-4o", "messages": []}', model="openai/gpt-4o")
    rig.a.script.extend([Reply(status=500, raw=b"x")] * 3)
    for _ in range(3):  # the connection profile's threshold
        assert (await rig.engine.execute(direct)).status == 500
    blocked = await rig.engine.execute(direct)
    assert blocked.status == 503 and error_of(blocked)["code"] == "no_available_target"
    assert blocked.headers["retry-after"] == "15"
    assert len(rig.a.requests) == 3
    rig.now[0] += 15_000  # cooldown over: half-open, one probe; its success closes the breaker
    assert (await rig.engine.execute(direct)).status == 200
    assert rig.engine.health.get("conn:conn-a").clean
    assert (await rig.engine.execute(direct)).status == 200


async def test_two_engines_share_a_cooldown_through_redis_within_a_second(rig: Rig, redis_url: str) -> None:
    import asyncio
    import time
    import uuid

    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    prefix = f"test:{uuid.uuid4().hex}"
    one, two = rig.engine, rig.engine
    try:
        one.health = HealthStore(redis, prefix=prefix)
        two = Engine(
            catalog=load_catalog(),
            snapshot=one._snapshot,
            credentials=one._credentials,
            upstream=one._upstream,
            translator=one._translator,
            publisher=rig.events,
            health=HealthStore(redis, prefix=prefix),
        )
        direct = request(b'{"model": "openai/gpt-4o", "messages": []}', model="openai/gpt-4o")
        assert (await two.execute(direct)).status == 200  # two has read the (empty) shared state
        rig.a.script.append(Reply(status=429, json={"error": {"message": "slow"}}, headers={"Retry-After": "30"}))
        assert (await one.execute(direct)).status == 429
        start = time.monotonic()
        while (await two.execute(direct)).status != 503:
            assert time.monotonic() - start < 1.0
            await asyncio.sleep(0.05)
        calls = len(rig.a.requests)
        await one.health.reset("conn:conn-a")
        while (await two.execute(direct)).status != 200:
            assert time.monotonic() - start < 2.0
            await asyncio.sleep(0.05)
        assert len(rig.a.requests) == calls + 1
    finally:
        await redis.aclose()
