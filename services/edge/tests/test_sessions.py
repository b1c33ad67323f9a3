"""Session identification (pure) and the batched tracker against a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from omniroute.v1 import common_pb2
from omniroute_core.sessionkeys import ANONYMOUS, SESSION_BY_KEY, SESSION_INDEX, SESSION_PREFIX
from omniroute_edge import sessions
from omniroute_edge.sessions import SessionTracker, session_id

OPENAI = common_pb2.FORMAT_OPENAI_CHAT
ANTHROPIC = common_pb2.FORMAT_ANTHROPIC_MESSAGES
GEMINI = common_pb2.FORMAT_GEMINI
RESPONSES = common_pb2.FORMAT_OPENAI_RESPONSES


def chat(*turns: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": r, "content": c} for r, c in turns], **extra}


def sid(doc: dict[str, Any], fmt: int = OPENAI, caller: str = "key-1", model: str = "openai/m") -> str | None:
    return session_id([], fmt, doc, caller, model)


def test_later_turns_of_a_conversation_share_its_session() -> None:
    first = chat(("system", "be brief"), ("user", "plan a trip"))
    later = chat(("system", "be brief"), ("user", "plan a trip"), ("assistant", "where?"), ("user", "Rome"))
    assert sid(first) is not None
    assert sid(first) == sid(later)


@pytest.mark.parametrize(
    ("doc", "caller", "model"),
    [
        (chat(("system", "be brief"), ("user", "plan a holiday")), "key-1", "openai/m"),  # first user message
        (chat(("system", "be long"), ("user", "plan a trip")), "key-1", "openai/m"),  # system prompt
        (chat(("system", "be brief"), ("user", "plan a trip")), "key-2", "openai/m"),  # caller
        (chat(("system", "be brief"), ("user", "plan a trip")), "key-1", "openai/n"),  # model
        (chat(("system", "be brief"), ("user", "plan a trip"), tools=[{"type": "function"}]), "key-1", "openai/m"),
    ],
)
def test_any_difference_in_the_conversation_is_another_session(doc: dict[str, Any], caller: str, model: str) -> None:
    base = sid(chat(("system", "be brief"), ("user", "plan a trip")))
    assert sid(doc, caller=caller, model=model) != base


def test_the_clients_own_session_header_wins_and_is_bounded() -> None:
    doc = chat(("user", "hi"))
    assert session_id([(b"x-session-id", b" abc ")], OPENAI, doc, "k", "m") == "ext:abc"
    assert session_id([(b"x-omniroute-session", b"s1")], OPENAI, doc, "k", "m") == "ext:s1"
    long = session_id([(b"session-id", b"x" * 500)], OPENAI, doc, "k", "m")
    assert long == "ext:" + "x" * 64
    assert session_id([(b"x-session-id", b"  ")], OPENAI, doc, "k", "m") == sid(doc, caller="k", model="m")


def test_each_format_is_read_where_it_keeps_the_conversation() -> None:
    anthropic = {"system": "be brief", "messages": [{"role": "user", "content": "plan a trip"}]}
    other_system = {"system": "be long", "messages": [{"role": "user", "content": "plan a trip"}]}
    assert sid(anthropic, ANTHROPIC) != sid(other_system, ANTHROPIC)
    gemini = {"contents": [{"role": "user", "parts": [{"text": "plan a trip"}]}]}
    other = {"contents": [{"role": "user", "parts": [{"text": "plan a holiday"}]}]}
    assert sid(gemini, GEMINI) is not None
    assert sid(gemini, GEMINI) != sid(other, GEMINI)
    assert sid({"input": "plan a trip"}, RESPONSES) != sid({"input": "plan a holiday"}, RESPONSES)
    assert sid({"input": "x", "instructions": "a"}, RESPONSES) != sid({"input": "x", "instructions": "b"}, RESPONSES)


def test_no_conversation_and_no_header_is_no_session() -> None:
    assert sid({"model": "m"}) is None
    assert sid({"messages": 42}) is None
    assert sid({"contents": []}, GEMINI) is None
    assert session_id([], common_pb2.FORMAT_UNSPECIFIED, chat(("user", "x")), "k", "m") is None


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_two_trackers_sum_their_counts_in_redis(redis: aioredis.Redis) -> None:
    clock = Clock()
    a, b = SessionTracker(redis, clock=clock), SessionTracker(redis, clock=clock)
    session, key_id = f"t-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}"
    a.touch(session, key_id, "openai/m")
    a.touch(session, key_id, "openai/m")
    clock.now += 1
    b.touch(session, key_id, "openai/n")
    await a.flush()
    await b.flush()
    raw = cast(dict[bytes, bytes], await redis.hgetall(SESSION_PREFIX + session))
    row = {k.decode(): v.decode() for k, v in raw.items()}
    assert row == {
        "keyId": key_id,
        "model": "openai/n",
        "createdAt": "1700000000000",
        "lastActive": "1700000001000",
        "requestCount": "3",
    }
    assert 0 < await redis.pttl(SESSION_PREFIX + session) <= 30 * 60 * 1000
    assert await redis.zscore(SESSION_INDEX, session) == 1_700_000_001_000
    assert await redis.zscore(SESSION_BY_KEY + key_id, session) == 1_700_000_001_000


async def test_anonymous_callers_and_expiry(redis: aioredis.Redis) -> None:
    clock = Clock()
    tracker = SessionTracker(redis, ttl_ms=60_000, clock=clock)
    old, new = f"t-{uuid.uuid4().hex}", f"t-{uuid.uuid4().hex}"
    tracker.touch(old, "", "m")
    await tracker.flush()
    assert await redis.zscore(SESSION_BY_KEY + ANONYMOUS, old) is not None
    clock.now += 61
    tracker.touch(new, "", "m")
    await tracker.flush()
    assert await redis.zscore(SESSION_INDEX, old) is None  # pruned from the index by the next write
    assert await redis.zscore(SESSION_INDEX, new) is not None


async def test_the_background_task_flushes_and_stop_writes_the_rest(redis: aioredis.Redis) -> None:
    tracker = SessionTracker(redis, flush_s=3600, max_pending=2)
    await tracker.start()
    first, second, third = (f"t-{uuid.uuid4().hex}" for _ in range(3))
    tracker.touch(first, "k", "m")
    tracker.touch(second, "k", "m")  # the batch is full: written without waiting for the interval
    for _ in range(100):
        if await redis.exists(SESSION_PREFIX + second):
            break
        await asyncio.sleep(0.02)
    assert await redis.exists(SESSION_PREFIX + first, SESSION_PREFIX + second) == 2
    tracker.touch(third, "k", "m")
    await tracker.stop()
    assert await redis.exists(SESSION_PREFIX + third) == 1


async def test_a_redis_outage_never_reaches_the_caller() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    tracker = SessionTracker(dead, flush_s=0.01)
    await tracker.start()
    tracker.touch("s", "k", "m")  # never raises
    await asyncio.sleep(0.1)
    await tracker.stop()
    await dead.aclose()


async def test_a_batch_larger_than_one_script_call_is_written_whole(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "_CHUNK", 2)
    clock = Clock()
    tracker = SessionTracker(redis, clock=clock)
    key_id = f"key-{uuid.uuid4().hex}"
    ids = [f"t-{uuid.uuid4().hex}" for _ in range(5)]
    for n, session in enumerate(ids):
        for _ in range(n + 1):
            tracker.touch(session, key_id if n % 2 else "", f"m{n}")
    await tracker.flush()
    for n, session in enumerate(ids):
        raw = cast(dict[bytes, bytes], await redis.hgetall(SESSION_PREFIX + session))
        assert raw[b"requestCount"] == str(n + 1).encode()
        assert raw[b"model"] == f"m{n}".encode()
        assert raw[b"keyId"] == (key_id if n % 2 else "").encode()
        owner = SESSION_BY_KEY + (key_id if n % 2 else ANONYMOUS)
        assert await redis.zscore(owner, session) == 1_700_000_000_000
        assert await redis.zscore(SESSION_INDEX, session) == 1_700_000_000_000
    assert 0 < await redis.pttl(SESSION_BY_KEY + key_id) <= 30 * 60 * 1000


async def test_the_script_is_loaded_again_when_redis_forgot_it(redis: aioredis.Redis) -> None:
    tracker = SessionTracker(redis)
    first, second = f"t-{uuid.uuid4().hex}", f"t-{uuid.uuid4().hex}"
    tracker.touch(first, "k", "m")
    await tracker.flush()
    await redis.script_flush()  # a restarted Redis, or another client's SCRIPT FLUSH
    tracker.touch(second, "k", "m")
    await tracker.flush()
    assert await redis.exists(SESSION_PREFIX + first, SESSION_PREFIX + second) == 2
