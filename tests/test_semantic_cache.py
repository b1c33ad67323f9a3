"""The semantic cache tier across every service: the executor's built-in local embedding model (or a configured
provider model, faked), Qdrant's in-process engine in each edge, the exact tier in the shared Redis, and the
official OpenAI SDK as the client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from omniroute_core.cachesettings import DEFAULT_THRESHOLD
from omniroute_devservers.control import config_synced, make_key, make_provider, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

MODEL = "xai/test-model"  # a provider no other cross-service test registers: its requests are these tests' own
EMBEDDER = "nebius/Qwen/Qwen3-Embedding-8B"
EDGE_ENV = {"SEMANTIC_EMBED_TIMEOUT_S": "20", "SEMANTIC_PAUSE_S": "1"}  # a busy shared machine


@pytest.fixture(scope="module")
async def upstream(admin: httpx.AsyncClient) -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    await make_provider(admin, "xai", fake.base_url)
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
async def embedder(admin: httpx.AsyncClient) -> AsyncIterator[FakeOpenAI]:
    """A configured embedding provider (OpenAI's embeddings wire), for the tests that switch the model."""
    fake = FakeOpenAI()
    await fake.start()
    await make_provider(admin, "nebius", fake.base_url)
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
async def edges(suite: Suite) -> AsyncIterator[tuple[str, str]]:
    """Two extra edges, each with its own in-process vector store (the suite gives each its own folder)."""
    a = suite.start_service("edge", key="semantic-a", overrides=EDGE_ENV)
    b = suite.start_service("edge", key="semantic-b", overrides=EDGE_ENV)
    yield f"http://127.0.0.1:{a}", f"http://127.0.0.1:{b}"
    suite.stop_service("semantic-a")
    suite.stop_service("semantic-b")


@pytest.fixture(scope="module")
async def keys(admin: httpx.AsyncClient, edges: tuple[str, str], upstream: FakeOpenAI) -> tuple[str, str]:
    pair = (await make_key(admin))[1], (await make_key(admin))[1]
    warm = (await make_key(admin, scopes=["embeddings"]))[1]
    await config_synced(admin, list(edges))

    async def probe() -> None:  # the executor loads the local model on first use
        async with httpx.AsyncClient(timeout=60) as http:
            resp = await http.post(
                edges[0] + "/v1/embeddings",
                json={"model": "local/all-minilm-l6-v2", "input": "warm up"},
                headers={"Authorization": f"Bearer {warm}"},
            )
            assert resp.status_code == 200, resp.text

    await until_ok(probe, timeout=60)
    return pair


def chat(question: str, **extra: Any) -> dict[str, Any]:
    """A deterministic request; ``seed`` keeps each test's entries apart from the others'."""
    return {"model": MODEL, "temperature": 0, "messages": [{"role": "user", "content": question}], **extra}


def isolated() -> int:
    return uuid.uuid4().int % 10**9


async def post(base: str, body: dict[str, Any], key: str, path: str = "/v1/chat/completions") -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(base + path, json=body, headers={"Authorization": f"Bearer {key}"})


def cache(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return str(resp.headers.get("x-omniroute-cache", ""))


async def test_a_paraphrase_is_answered_from_the_cache_seen_by_the_openai_sdk(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    seed = isolated()
    async with openai.AsyncOpenAI(base_url=edges[0] + "/v1", api_key=keys[0], max_retries=0) as client:
        first = await client.chat.completions.with_raw_response.create(
            model=MODEL,
            temperature=0,
            seed=seed,
            messages=[{"role": "user", "content": "How do I reverse a list in Python?"}],
        )
        assert first.headers["x-omniroute-cache"] == "MISS"
        before = len(upstream.requests)
        again = await client.chat.completions.with_raw_response.create(
            model=MODEL,
            temperature=0,
            seed=seed,
            messages=[{"role": "user", "content": "how can I reverse a list in python"}],
        )
    assert again.headers["x-omniroute-cache"] == "HIT"
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert again.parse().id == first.parse().id
    assert len(upstream.requests) == before


@pytest.mark.parametrize(
    "variant",
    [
        {"model": "xai/other-model"},
        {"temperature": 0, "top_p": 0.5},
        {"max_tokens": 7},
        {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]},
        {"messages": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "what is dns"}]},
    ],
    ids=["model", "sampling", "max_tokens", "tools", "system"],
)
async def test_no_false_hit_across_keys_models_tools_system_prompts_and_parameters(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str], variant: dict[str, Any]
) -> None:
    base = chat("What is DNS?", seed=isolated())
    assert cache(await post(edges[0], base, keys[0])) == "MISS"
    paraphrase = {**base, "messages": [{"role": "user", "content": "what is dns"}]}
    assert cache(await post(edges[0], paraphrase, keys[0])) == "HIT"
    before = len(upstream.requests)
    assert cache(await post(edges[0], {**paraphrase, **variant}, keys[0])) == "MISS"
    assert cache(await post(edges[0], paraphrase, keys[1])) == "MISS"  # another key
    assert len(upstream.requests) == before + 2


@pytest.mark.parametrize(
    "other",
    ["What is 2 + 3?", "Why is 2 + 2 not 5?", "What is 2 times 2?"],
)
async def test_another_question_on_the_same_topic_misses(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str], other: str
) -> None:
    seed = isolated()
    await post(edges[0], chat("What is 2 + 2?", seed=seed), keys[0])
    assert cache(await post(edges[0], chat("what's 2+2", seed=seed), keys[0])) == "HIT"
    assert cache(await post(edges[0], chat(other, seed=seed), keys[0])) == "MISS"


async def test_a_streamed_reply_is_replayed_as_a_stream_for_a_paraphrase(
    edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    seed = isolated()
    first = await post(edges[0], chat("Explain what a neural network is.", stream=True, seed=seed), keys[0])
    before = len(upstream.requests)
    again = await post(edges[0], chat("Can you explain what a neural network is?", stream=True, seed=seed), keys[0])
    assert again.status_code == 200 and "x-omniroute-cache" not in again.headers
    assert again.headers["content-type"].startswith("text/event-stream")
    assert again.content == first.content and again.content.endswith(b"data: [DONE]\n\n")
    assert len(upstream.requests) == before
    # the same question in Anthropic's format gets its own entry, replayed as Anthropic's stream
    anthropic = {"model": MODEL, "max_tokens": 50, "temperature": 0, "stream": True, "metadata": {"user_id": str(seed)}}
    one = await post(edges[0], {**anthropic, "messages": [{"role": "user", "content": "What is an API?"}]},
                     keys[0], "/v1/messages")  # fmt: skip
    two = await post(edges[0], {**anthropic, "messages": [{"role": "user", "content": "what's an API"}]},
                     keys[0], "/v1/messages")  # fmt: skip
    assert b"event: message_start" in one.content and two.content == one.content


async def _points(suite: Suite, edge: str) -> float:
    port = suite.procs[edge].env["METRICS_PORT"]
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    for line in text.splitlines():
        if line.startswith("omniroute_edge_semantic_cache_points "):
            return float(line.split()[1])
    raise AssertionError("no points gauge")


async def test_delete_clears_every_tier_including_each_edges_vectors(
    admin: httpx.AsyncClient, suite: Suite, edges: tuple[str, str], upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    seed = isolated()
    for i, base in enumerate(edges):  # each edge's in-process store holds the points of the misses it served
        await post(base, chat("What is the speed of light?", seed=seed + i), keys[1])
        assert cache(await post(base, chat("what is the speed of light", seed=seed + i), keys[1])) == "HIT"
    assert (await admin.delete("/api/cache")).status_code == 200

    async def emptied() -> None:
        for edge in ("semantic-a", "semantic-b"):
            assert await _points(suite, edge) == 0

    await until_ok(emptied, timeout=10)
    assert cache(await post(edges[1], chat("what is the speed of light", seed=seed + 1), keys[1])) == "MISS"
    stats = (await admin.get("/api/cache")).json()
    assert set(stats) == {"semanticCache", "idempotency"}
    assert set(stats["semanticCache"]) == {"memorySize", "memoryMaxSize", "dbSize", "hitRate"}


async def test_cache_setting_shows_the_semantic_defaults(admin: httpx.AsyncClient) -> None:
    semantic = (await admin.get("/api/settings/cache")).json()["semantic"]
    assert semantic == {"enabled": True, "threshold": DEFAULT_THRESHOLD, "model": "local/all-minilm-l6-v2"}


async def test_a_configured_embedding_model_is_asked_and_its_failure_never_fails_a_request(
    admin: httpx.AsyncClient, edges: tuple[str, str], upstream: FakeOpenAI, embedder: FakeOpenAI,
    keys: tuple[str, str],
) -> None:  # fmt: skip
    put = await admin.put("/api/settings/cache", json={"semantic": {"model": EMBEDDER}})
    assert put.status_code == 200, put.text
    try:
        await config_synced(admin, list(edges))
        seed = isolated()
        vector = [0.6, 0.8, 0.0, 0.0]
        same = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                "model": "Qwen/Qwen3-Embedding-8B", "usage": {"prompt_tokens": 4, "total_tokens": 4}}  # fmt: skip
        embedder.script.extend([Reply(json=same), Reply(json=same)])
        before = len(embedder.requests)
        assert cache(await post(edges[0], chat("What is DNS?", seed=seed), keys[0])) == "MISS"
        assert embedder.requests[before].json == {"model": "Qwen/Qwen3-Embedding-8B", "input": ["What is DNS?"]}
        assert embedder.requests[before].path == "/v1/embeddings"
        assert cache(await post(edges[0], chat("what is dns", seed=seed), keys[0])) == "HIT"
        assert embedder.requests[before + 1].json["input"] == ["what is dns"]

        embedder.script.append(Reply(status=500, json={"error": {"message": "down", "type": "server_error"}}))
        asked = len(upstream.requests)
        resp = await post(edges[0], chat("What is TCP?", seed=seed), keys[0])
        assert cache(resp) == "MISS" and resp.json()["choices"][0]["message"]["content"]
        assert len(upstream.requests) == asked + 1
    finally:
        await admin.put("/api/settings/cache", json={"semantic": {"model": "local/all-minilm-l6-v2"}})
        await config_synced(admin, list(edges))
        await asyncio.sleep(1.2)  # the tier's pause after the failure (SEMANTIC_PAUSE_S)


async def test_an_edge_whose_qdrant_is_unreachable_serves_with_the_exact_tier(
    suite: Suite, admin: httpx.AsyncClient, upstream: FakeOpenAI, keys: tuple[str, str]
) -> None:
    from omniroute_devservers.servers import free_port

    port = suite.start_service(
        "edge", key="semantic-noqdrant", overrides={"QDRANT_URL": f"http://127.0.0.1:{free_port()}"}
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await config_synced(admin, [base])
        seed = isolated()
        assert cache(await post(base, chat("What is DNS?", seed=seed), keys[0])) == "MISS"
        assert cache(await post(base, chat("What is DNS?", seed=seed), keys[0])) == "HIT"
        assert cache(await post(base, chat("what is dns", seed=seed), keys[0])) == "MISS"
        assert "the semantic cache is off" in suite.log_tail("semantic-noqdrant", 200)
    finally:
        suite.stop_service("semantic-noqdrant")
