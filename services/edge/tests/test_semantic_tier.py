"""The semantic tier around one request (``replay.serve``), against a real Redis (the exact tier holding the
replies) and Qdrant's in-process engine. The embedding model stands in for a provider: a deterministic bag of
words, so a question in other word forms embeds identically and the tests can say which texts were embedded."""

from __future__ import annotations

import asyncio
import hashlib
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from omniroute_core.cachekeys import CACHE_STATS
from omniroute_core.cachesettings import SemanticSetting
from omniroute_edge.cache import ExactCache
from omniroute_edge.replay import ReplayPolicy, RequestFacts, serve
from omniroute_edge.routes import ROUTES, Route
from omniroute_edge.semantic import (
    EdgeStore,
    Embedding,
    EmbeddingError,
    SemanticCache,
    SemanticLimits,
    SemanticMetrics,
    signature,
)

BY_PATH = {r.path: r for r in ROUTES}
CHAT = BY_PATH["/v1/chat/completions"]
MESSAGES = BY_PATH["/v1/messages"]


@dataclass
class WordsEmbedder:
    """Unit vectors from the question's content words: paraphrases up to form embed identically."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)
    fail: Exception | None = None
    delay_s: float = 0.0
    tokens: int = 5

    async def embed(self, model: str, text: str, *, key_id: str, request_id: str, timeout_s: float) -> Embedding:
        self.calls.append((model, text, key_id))
        if self.delay_s:
            await asyncio.wait_for(asyncio.sleep(self.delay_s), timeout_s)
        if self.fail is not None:
            raise self.fail
        vector = [0.0] * 64
        for word in signature(text):
            vector[hashlib.sha256(word.encode()).digest()[0] % 64] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return Embedding([x / norm for x in vector], self.tokens)


@dataclass
class Env:
    redis: aioredis.Redis
    exact: ExactCache
    tier: SemanticCache
    embedder: WordsEmbedder
    setting: list[SemanticSetting]
    upstream: list[dict[str, Any]] = field(default_factory=list)

    def policy(self, semantic: bool = True) -> ReplayPolicy:
        return ReplayPolicy(None, self.exact, "deterministic", 1 << 20, self.tier if semantic else None)

    async def ask(self, doc: dict[str, Any], *, scope: str, route: Route = CHAT, no_cache: bool = False,
                  answer: bytes = b"", status: int = 200) -> tuple[int, dict[bytes, bytes], bytes]:  # fmt: skip
        """One request through ``serve``: the reply the client got (status, headers, body)."""
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def run(out: Any, extra: list[tuple[bytes, bytes]]) -> int:
            self.upstream.append(doc)
            body = answer or b'{"answer": %d}' % len(self.upstream)
            stream = bool(doc.get("stream"))
            ctype = b"text/event-stream" if stream else b"application/json"
            await out({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype), *extra]})
            if stream:
                await out({"type": "http.response.body", "body": b"data: " + body + b"\n\n", "more_body": True})
                await out({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
            else:
                await out({"type": "http.response.body", "body": body})
            return status

        facts = RequestFacts(scope, route.path, doc, bool(doc.get("stream")), "", no_cache)
        code = await serve(self.policy(), route, facts, send, "rid-" + uuid.uuid4().hex[:6], run)
        await self.tier.flush()  # the point of a miss is written in the background
        headers = dict(sent[0]["headers"])
        return code, headers, b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
async def env(redis_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    redis = aioredis.from_url(redis_url)
    exact = ExactCache(redis, ttl_s=60, memory_max=100, db_max=1000)
    embedder = WordsEmbedder()
    setting = [SemanticSetting(enabled=True, threshold=0.9, model="test/words")]
    store = EdgeStore(str(tmp_path / "qdrant"))
    limits = SemanticLimits(ttl_s=60, max_points=100, embed_timeout_s=0.3, pause_s=60)
    tier = SemanticCache(store, embedder, exact, lambda: setting[0], SemanticMetrics(CollectorRegistry()), limits)
    await tier.start()
    try:
        yield Env(redis, exact, tier, embedder, setting)
    finally:
        await tier.stop()
        await redis.aclose()


def chat(question: str, **extra: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-4o", "temperature": 0, "messages": [{"role": "user", "content": question}], **extra}


def scope() -> str:
    return "key-" + uuid.uuid4().hex[:8]


async def test_a_paraphrase_is_answered_from_the_first_reply(env: Env) -> None:
    me = scope()
    status, headers, first = await env.ask(chat("How do I reverse a list in Python?"), scope=me)
    assert (status, headers[b"x-omniroute-cache"]) == (200, b"MISS")
    status, headers, again = await env.ask(chat("how can I reverse a list in python"), scope=me)
    assert (status, headers[b"x-omniroute-cache"], again) == (200, b"HIT", first)
    assert len(env.upstream) == 1
    assert [c[1] for c in env.embedder.calls] == [
        "How do I reverse a list in Python?",
        "how can I reverse a list in python",
    ]
    assert env.embedder.calls[0][0] == "test/words" and env.embedder.calls[0][2] == me


async def test_a_stream_is_replayed_as_the_stream_it_was(env: Env) -> None:
    me = scope()
    _, headers, first = await env.ask(chat("What is an API?", stream=True), scope=me)
    assert b"x-omniroute-cache" not in headers
    _, headers, again = await env.ask(chat("what's an API", stream=True), scope=me)
    assert b"x-omniroute-cache" not in headers and headers[b"content-type"] == b"text/event-stream"
    assert again == first and again.endswith(b"data: [DONE]\n\n")
    assert len(env.upstream) == 1
    _, headers, _ = await env.ask(chat("What is an API?"), scope=me)  # not a stream: never the stream's reply
    assert headers[b"x-omniroute-cache"] == b"MISS"


@pytest.mark.parametrize(
    "variant",
    [
        {"model": "openai/gpt-4o-mini"},
        {"max_tokens": 5},
        {"seed": 7},
        {"top_p": 0.5},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"tool_choice": "none"},
        {"messages": [{"role": "system", "content": "answer in French"}, {"role": "user", "content": "What is DNS?"}]},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "What is DNS?"},
            ]
        },
        {"stream": True},
    ],
)
async def test_no_semantic_hit_when_anything_but_the_wording_differs(env: Env, variant: dict[str, Any]) -> None:
    me = scope()
    await env.ask(chat("What is DNS?"), scope=me)
    assert (await env.ask(chat("what is dns"), scope=me))[1][b"x-omniroute-cache"] == b"HIT"
    _, headers, _ = await env.ask({**chat("what is dns"), **variant}, scope=me)
    assert headers.get(b"x-omniroute-cache", b"MISS") == b"MISS"
    assert (await env.ask(chat("what is dns"), scope=scope()))[1][b"x-omniroute-cache"] == b"MISS"  # another key


async def test_no_hit_across_routes_or_for_another_question(env: Env) -> None:
    me = scope()
    await env.ask(chat("What is 2 + 2?"), scope=me)
    assert (await env.ask(chat("What is 2 + 3?"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
    assert (await env.ask(chat("Why is my code not working?"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
    anthropic = {"model": "openai/gpt-4o", "max_tokens": 5, "temperature": 0,
                 "messages": [{"role": "user", "content": "what is 2+2"}]}  # fmt: skip
    assert (await env.ask(anthropic, scope=me, route=MESSAGES))[1][b"x-omniroute-cache"] == b"MISS"


async def test_ineligible_requests_never_embed(env: Env) -> None:
    me = scope()
    await env.ask(chat("What is DNS?", temperature=0.7), scope=me)
    await env.ask(chat("What is DNS?"), scope=me, no_cache=True)
    image = [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    await env.ask({**chat(""), "messages": [{"role": "user", "content": image}]}, scope=me)
    assert env.embedder.calls == []
    await env.ask(chat("What is DNS?"), scope=me)
    await env.ask(chat("What is DNS?"), scope=me)  # an exact hit: the semantic tier is not consulted
    assert len(env.embedder.calls) == 1


async def test_the_setting_switches_the_tier_and_its_threshold(env: Env) -> None:
    me = scope()
    await env.ask(chat("How do vaccines work?"), scope=me)
    env.setting[0] = SemanticSetting(enabled=False, threshold=0.9, model="test/words")
    assert (await env.ask(chat("how does a vaccine work"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
    env.setting[0] = SemanticSetting(enabled=True, threshold=0.9, model="test/other")  # another model's space
    assert (await env.ask(chat("how does a vaccine work?"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
    env.setting[0] = SemanticSetting(enabled=True, threshold=0.9, model="test/words")
    assert (await env.ask(chat("How does the vaccine work?"), scope=me))[1][b"x-omniroute-cache"] == b"HIT"


async def test_errors_and_non_200_replies_are_not_stored(env: Env) -> None:
    me = scope()
    await env.ask(chat("What is DNS?"), scope=me, status=500)
    assert (await env.ask(chat("what is dns"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
    assert await env.tier.size() == 1


@pytest.mark.parametrize("failure", ["error", "timeout"])
async def test_a_failing_embedding_serves_the_request_and_pauses_the_tier(env: Env, failure: str) -> None:
    me = scope()
    if failure == "error":
        env.embedder.fail = EmbeddingError("503 from the executor")
    else:
        env.embedder.delay_s = 5
    status, headers, body = await env.ask(chat("What is DNS?"), scope=me)
    assert (status, headers[b"x-omniroute-cache"], body) == (200, b"MISS", b'{"answer": 1}')
    await env.ask(chat("What is a CNAME?"), scope=me)
    assert len(env.embedder.calls) == 1  # paused: the second request did not wait for the embedder
    assert len(env.upstream) == 2
    assert (await env.ask(chat("What is DNS?"), scope=me))[1][b"x-omniroute-cache"] == b"HIT"  # exact tier intact


async def test_a_broken_store_serves_the_request(env: Env, tmp_path: Path) -> None:
    me = scope()
    await env.tier._store.close()  # every store call now fails (its worker thread is gone)
    status, headers, _ = await env.ask(chat("What is DNS?"), scope=me)
    assert (status, headers[b"x-omniroute-cache"]) == (200, b"MISS")
    env.tier._store = EdgeStore(str(tmp_path / "fresh"))
    await env.tier._store.open()


async def test_a_possibly_truncated_input_is_not_used(env: Env) -> None:
    env.setting[0] = SemanticSetting(enabled=True, threshold=0.9, model="local/all-minilm-l6-v2")
    env.embedder.tokens = 256  # the whole window of the local model: the end of the question may be lost
    me = scope()
    await env.ask(chat("What is DNS?"), scope=me)
    assert (await env.ask(chat("what is dns"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
    assert await env.tier.size() == 0


async def test_a_point_whose_reply_is_gone_misses_and_is_dropped(env: Env) -> None:
    me = scope()
    await env.ask(chat("What is DNS?"), scope=me)
    env.exact.clear_memory()
    keys = [k async for k in env.redis.scan_iter(match="omr:cache:e:*")]
    await env.redis.delete(*keys)
    assert (await env.ask(chat("what is dns"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
    assert await env.tier.size() == 1  # the stale point went, the new question's point came


async def test_semantic_hits_count_in_the_hit_rate_once_per_request(env: Env) -> None:
    async def stats() -> tuple[int, int]:
        await env.exact.flush_counts()  # counted in process, written on an interval
        raw = cast(dict[bytes, bytes], await env.redis.hgetall(CACHE_STATS))
        return int(raw.get(b"hits", 0)), int(raw.get(b"misses", 0))

    me = scope()
    hits, misses = await stats()
    await env.ask(chat("What is DNS?"), scope=me)
    await env.ask(chat("what is dns"), scope=me)
    await env.ask(chat("What is DNS?"), scope=me)
    assert await stats() == (hits + 2, misses + 1)


async def test_a_clear_drops_the_vectors(env: Env) -> None:
    me = scope()
    await env.ask(chat("What is DNS?"), scope=me)
    assert await env.tier.size() == 1
    await env.tier.clear()
    assert await env.tier.size() == 0


async def test_points_expire_with_their_replies_and_the_cap_holds(redis_url: str, tmp_path: Path) -> None:
    redis = aioredis.from_url(redis_url)
    now = [1_000_000.0]
    exact = ExactCache(redis, ttl_s=60, memory_max=100, db_max=1000)
    setting = SemanticSetting(enabled=True, threshold=0.9, model="test/words")
    limits = SemanticLimits(ttl_s=60, max_points=3)
    tier = SemanticCache(EdgeStore(str(tmp_path / "q")), WordsEmbedder(), exact, lambda: setting,
                         SemanticMetrics(CollectorRegistry()), limits, clock=lambda: now[0])  # fmt: skip
    await tier.start()
    try:
        env = Env(redis, exact, tier, cast(WordsEmbedder, tier._embedder), [setting])
        me = scope()
        for question in ("What is DNS?", "What is TCP?", "What is UDP?", "What is IP?", "What is ARP?"):
            await env.ask(chat(question), scope=me)
            now[0] += 1
        await tier.sweep()  # (writes also wake the sweeper early)
        assert await tier.size() == 3  # the two oldest went
        assert (await env.ask(chat("what is tcp"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
        assert (await env.ask(chat("what is arp"), scope=me))[1][b"x-omniroute-cache"] == b"HIT"
        now[0] += 61  # past the TTL: the points no longer match, and the sweep removes them
        assert (await env.ask(chat("what is arp"), scope=me))[1][b"x-omniroute-cache"] == b"MISS"
        await tier.sweep()
        assert await tier.size() == 1  # only the point stored just now
    finally:
        await tier.stop()
        await redis.aclose()
