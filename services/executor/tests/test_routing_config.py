"""The engine with the routing configuration: a provider node's custom headers on the wire, aliases to it, model
lockouts after a provider refused a model (shared through a real Redis, ended by a new credential), and the
rate-limit headers of provider responses recorded per connection in Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from redis.asyncio import Redis

from omniroute.v1 import common_pb2, executor_pb2
from omniroute_core import grpcx, jsonx
from omniroute_core.catalog import load_catalog
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.health import health_hash, lockout_key
from omniroute_core.nodes import CustomModel, ProviderNode
from omniroute_core.ratelimits import rate_limit_key
from omniroute_core.snapshot import ConfigSnapshot, ProviderConnection
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_executor.engine import Engine
from omniroute_executor.listing import listed_models
from omniroute_executor.prepare import Credentials
from omniroute_executor.resilience import HealthStore
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream

NODE_HEADERS = {"X-Tenant": "team-a", "Authorization": "Bearer node-level-token"}


@dataclass
class Rig:
    engine: Engine
    fake: FakeOpenAI
    cipher: Cipher
    redis: Redis
    prefix: str
    snapshot: list[ConfigSnapshot]

    def connection(self, cid: str, provider: str, key: str, priority: int = 0) -> ProviderConnection:
        return ProviderConnection(
            cid, provider, cid, self.fake.base_url if provider == "openai" else "", self.cipher.encrypt(key, aad=cid),
            priority=priority,
        )  # fmt: skip


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    fake = FakeOpenAI()
    await fake.start()
    cipher = Cipher(generate_encryption_key())
    redis = Redis.from_url(redis_url)
    prefix = f"test:{uuid.uuid4().hex}"
    upstream = Upstream(max_connections=10, connect_timeout_s=2, read_timeout_s=2.0)
    channel = grpcx.insecure_channel("127.0.0.1:9")  # same-format requests only: the translator is never called
    holder: list[ConfigSnapshot] = [ConfigSnapshot.build(1, (), (), {})]
    engine = Engine(
        catalog=load_catalog(),
        snapshot=lambda: holder[0],
        credentials=Credentials(cipher),
        upstream=upstream,
        translator=TranslatorClient(channel),
        publisher=None,
        health=HealthStore(redis, prefix=prefix, refresh_s=0),
    )
    try:
        yield Rig(engine, fake, cipher, redis, prefix, holder)
    finally:
        await engine.health.close()
        await upstream.close()
        await channel.close()
        await redis.aclose()
        await fake.stop()


def request(model: str, body: bytes | None = None) -> executor_pb2.ExecuteRequest:
    meta = common_pb2.RequestMeta(
        request_id="r",
        client_format=common_pb2.FORMAT_OPENAI_CHAT,
        operation=common_pb2.OPERATION_CHAT,
        model=model,
        endpoint="/v1/chat/completions",
    )
    payload = body or jsonx.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    return executor_pb2.ExecuteRequest(meta=meta, body=payload)


async def test_a_node_is_routed_with_its_custom_headers_and_through_an_alias(rig: Rig) -> None:
    node_id = "openai-compatible-abc"
    node = ProviderNode(
        node_id, "vllm", "Local", "openai-compatible", "chat", rig.fake.base_url,
        headers_enc=rig.cipher.encrypt(jsonx.dumps_str(NODE_HEADERS), aad=node_id),
    )  # fmt: skip
    conn = rig.connection("n1", node_id, "sk-node")
    rig.snapshot[0] = ConfigSnapshot.build(
        2, (replace(conn, headers={"X-Conn": "1"}),), (), {}, aliases={"local": "vllm/qwen3-8b"}, nodes=(node,)
    )
    for model in ("vllm/qwen3-8b", "local"):
        reply = await rig.engine.execute(request(model))
        assert reply.status == 200, reply.body
        assert (reply.provider, reply.model) == (node_id, "qwen3-8b")
        sent = rig.fake.requests[-1]
        assert sent.path == "/v1/chat/completions"
        assert sent.json == {"model": "qwen3-8b", "messages": [{"role": "user", "content": "hi"}]}
        # the node's headers come after the credential (so they may replace it), the connection's after them
        assert sent.headers["Authorization"] == "Bearer node-level-token"
        assert (sent.headers["X-Tenant"], sent.headers["X-Conn"]) == ("team-a", "1")


async def test_a_refused_model_is_locked_out_on_that_connection_until_its_key_changes(rig: Rig) -> None:
    first, second = rig.connection("c1", "openai", "sk-one", 1), rig.connection("c2", "openai", "sk-two", 2)
    rig.snapshot[0] = ConfigSnapshot.build(2, (first, second), (), {})
    missing = {
        "error": {"message": "The model does not exist", "type": "invalid_request_error", "code": "model_not_found"}
    }
    rig.fake.script.append(Reply(status=404, json=missing))

    reply = await rig.engine.execute(request("openai/gpt-4o"))
    assert reply.status == 200  # c1 answered 404, the request moved on to c2
    assert [r.headers["Authorization"] for r in rig.fake.requests] == ["Bearer sk-one", "Bearer sk-two"]
    stored = await rig.redis.hget(health_hash("0", rig.prefix), lockout_key(first, "gpt-4o"))
    assert stored is not None
    record = jsonx.loads(stored)
    assert len(record) == 6 and record[4] > 0 and record[5] == 404  # [.., locked until, status]

    await rig.engine.execute(request("openai/gpt-4o"))
    assert rig.fake.requests[-1].headers["Authorization"] == "Bearer sk-two"  # c1 is skipped for gpt-4o ...
    await rig.engine.execute(request("openai/gpt-4o-mini"))
    assert rig.fake.requests[-1].headers["Authorization"] == "Bearer sk-one"  # ... but not for another model

    # a replica that never saw the 404 skips c1 too: the lockout is in Redis
    other = HealthStore(rig.redis, prefix=rig.prefix)
    await other.refresh(force=True)
    assert other.blocked_until(lockout_key(first, "gpt-4o")) > 0

    rotated = rig.connection("c1", "openai", "sk-one-rotated", 1)  # the operator replaces the key
    rig.snapshot[0] = ConfigSnapshot.build(3, (rotated, second), (), {})
    await rig.engine.execute(request("openai/gpt-4o"))
    assert rig.fake.requests[-1].headers["Authorization"] == "Bearer sk-one-rotated"


async def test_every_connection_locked_out_is_503_with_retry_after(rig: Rig) -> None:
    only = rig.connection("c1", "openai", "sk-one")
    rig.snapshot[0] = ConfigSnapshot.build(2, (only,), (), {})
    rig.fake.script.append(Reply(status=401, json={"error": {"message": "bad key", "type": "auth", "code": None}}))
    assert (await rig.engine.execute(request("openai/gpt-4o"))).status == 401
    blocked = await rig.engine.execute(request("openai/gpt-4o"))
    assert blocked.status == 503 and int(blocked.headers["retry-after"]) > 200
    assert len(rig.fake.requests) == 1


async def test_rate_limit_headers_are_recorded_per_connection(rig: Rig) -> None:
    cid = f"c-{uuid.uuid4().hex[:8]}"
    rig.snapshot[0] = ConfigSnapshot.build(2, (rig.connection(cid, "openai", "sk"),), (), {})
    limits = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "9000",
    }
    rig.fake.script.append(Reply(json=rig.fake.completion("gpt-4o"), headers=limits))
    assert (await rig.engine.execute(request("openai/gpt-4o"))).status == 200
    assert await rig.engine.health.rate_limits.flush() == 1  # the background task does this every 250 ms
    record = jsonx.loads(await rig.redis.get(rate_limit_key(cid)) or b"null")
    assert record["status"] == 200
    assert record["windows"]["requests"]["limit"] == 60 and record["windows"]["requests"]["remaining"] == 59
    assert record["windows"]["tokens"] == {"limit": None, "remaining": 9000, "resetAt": None}
    assert 0 < await rig.redis.ttl(rate_limit_key(cid)) <= 3600

    rig.fake.script.append(Reply(status=429, json={"error": {"message": "slow"}}, headers={"retry-after": "3"}))
    await rig.engine.execute(request("openai/gpt-4o"))
    await rig.engine.health.close()  # flushes what is left
    record = jsonx.loads(await rig.redis.get(rate_limit_key(cid)) or b"null")
    assert (record["status"], record["retryAfterMs"]) == (429, 3000)


async def test_responses_without_rate_limit_information_write_nothing(rig: Rig) -> None:
    cid = f"c-{uuid.uuid4().hex[:8]}"
    rig.snapshot[0] = ConfigSnapshot.build(2, (rig.connection(cid, "openai", "sk"),), (), {})
    assert (await rig.engine.execute(request("openai/gpt-4o"))).status == 200
    assert await rig.engine.health.rate_limits.flush() == 0
    assert await rig.redis.get(rate_limit_key(cid)) is None


def test_model_listings_include_custom_models_nodes_and_aliases(rig: Rig) -> None:
    node = ProviderNode("node-1", "vllm", "Local", "openai-compatible", "chat", rig.fake.base_url)
    snapshot = ConfigSnapshot.build(
        2,
        (rig.connection("n1", "node-1", "k"), rig.connection("o1", "openai", "k")),
        (),
        {},
        aliases={"fast": "vllm/qwen3-8b", "broken": "nope/x", "embed": "openai/text-embedding-3-small"},
        nodes=(node,),
        custom_models=(
            CustomModel("node-1", "qwen3-8b"),
            CustomModel("openai", "ft:gpt-4o:acme", "chat"),
            CustomModel("anthropic", "claude-next"),  # no connection: not listed
            CustomModel("node-1", "bge-m3", "embedding"),
        ),
    )
    chat = [m.id for m in listed_models(load_catalog(), snapshot, ["chat"], None)]
    assert {"vllm/qwen3-8b", "openai/ft:gpt-4o:acme", "fast"} <= set(chat)
    assert not {"anthropic/claude-next", "broken", "embed", "vllm/bge-m3"} & set(chat)
    embeddings = [m.id for m in listed_models(load_catalog(), snapshot, ["embeddings"], None)]
    assert {"vllm/bge-m3", "embed", "openai/text-embedding-3-small"} <= set(embeddings) and "fast" not in embeddings
