"""Active-session tracking for ``/api/sessions``: which conversations are live, by whom, with how many requests.

A session is the client's own id when it sends one (``X-Session-Id``, ``X-OmniRoute-Session`` or ``Session-Id``;
prefixed ``ext:`` so it can never collide with a fingerprint), otherwise a fingerprint of the conversation: the
caller (key id or client address), the model, the system prompt, the first user message and the tools. Later
turns of one conversation repeat all of those, so they land in the same session; another conversation differs in
at least its first user message.

Recording stays off the request path: :meth:`SessionTracker.touch` only updates an in-process batch, and a
background task writes the batch to Redis (:mod:`omniroute_core.sessionkeys`) in one pipeline every
``flush_s``, adding request counts with ``HINCRBY`` so several edge replicas sum correctly. A Redis outage loses
at most the counts of the batches it interrupts; it never delays or fails a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.sessionkeys import ANONYMOUS, SESSION_BY_KEY, SESSION_INDEX, SESSION_PREFIX, SESSION_TTL_MS

__all__ = ["SessionTracker", "session_id"]

log = logging.getLogger(__name__)

_SESSION_HEADERS = (b"x-session-id", b"x-omniroute-session", b"session-id")
_MAX_EXTERNAL_ID = 64
_SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class _Conversation:
    """Where a format keeps the turns and, when it keeps it apart from them, the system prompt."""

    turns: str
    system: str | None = None


# a table keyed by the route's format (STYLE rule 8: formats are data at the edge, not branches)
_CONVERSATIONS: Mapping[int, _Conversation] = {
    common_pb2.FORMAT_OPENAI_CHAT: _Conversation("messages"),
    common_pb2.FORMAT_OLLAMA_CHAT: _Conversation("messages"),
    common_pb2.FORMAT_ANTHROPIC_MESSAGES: _Conversation("messages", "system"),
    common_pb2.FORMAT_OPENAI_RESPONSES: _Conversation("input", "instructions"),
    common_pb2.FORMAT_GEMINI: _Conversation("contents", "systemInstruction"),
}


def session_id(
    headers: Iterable[tuple[bytes, bytes]], fmt: int, doc: Mapping[str, Any], caller: str, model: str
) -> str | None:
    """The session of a request, or None when it names none and carries no conversation to fingerprint."""
    for name, value in headers:
        if name in _SESSION_HEADERS and value.strip():
            return "ext:" + value.decode("latin-1").strip()[:_MAX_EXTERNAL_ID]
    shape = _CONVERSATIONS.get(fmt)
    if shape is None:
        return None
    turns = doc.get(shape.turns)
    system = doc.get(shape.system) if shape.system else None
    if system is None:
        system = _first_turn(turns, _SYSTEM_ROLES)
    first_user = turns if isinstance(turns, str) else _first_turn(turns, frozenset({"user"}))
    if first_user is None and system is None:
        return None
    digest = hashlib.sha256()
    for part in (caller, model, system, first_user, doc.get("tools")):
        digest.update(jsonx.dumps(part, sort_keys=True))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _first_turn(turns: Any, roles: frozenset[str]) -> Any:
    if not isinstance(turns, list):
        return None
    for turn in turns:
        if isinstance(turn, dict) and turn.get("role") in roles:
            return turn.get("content", turn.get("parts"))
    return None


@dataclass(slots=True)
class _Pending:
    key_id: str
    model: str
    count: int
    first_ms: int
    last_ms: int


class SessionTracker:
    """Batches session touches in memory and writes them to Redis every ``flush_s`` (see the module doc)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        ttl_ms: int = SESSION_TTL_MS,
        flush_s: float = 0.25,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._ttl_ms = ttl_ms
        self._flush_s = flush_s
        self._max_pending = max_pending
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def touch(self, session: str, key_id: str, model: str) -> None:
        now = int(self._clock() * 1000)
        entry = self._pending.get(session)
        if entry is None:
            self._pending[session] = _Pending(key_id, model, 1, now, now)
            if len(self._pending) >= self._max_pending:
                self._full.set()
        else:
            entry.count += 1
            entry.last_ms = now
            entry.model = model

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="session-tracker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()

    async def flush(self) -> None:
        """Write the current batch (a no-op when it is empty)."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        self._full.clear()
        now = int(self._clock() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid, entry in batch.items():
                key = SESSION_PREFIX + sid
                owner = entry.key_id or ANONYMOUS
                pipe.hsetnx(key, "createdAt", entry.first_ms)
                pipe.hset(key, mapping={"keyId": entry.key_id, "model": entry.model, "lastActive": entry.last_ms})
                pipe.hincrby(key, "requestCount", entry.count)
                pipe.pexpire(key, self._ttl_ms)
                pipe.zadd(SESSION_INDEX, {sid: entry.last_ms})
                pipe.zadd(SESSION_BY_KEY + owner, {sid: entry.last_ms})
                pipe.pexpire(SESSION_BY_KEY + owner, self._ttl_ms)
            pipe.zremrangebyscore(SESSION_INDEX, "-inf", now - self._ttl_ms)
            await pipe.execute()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._flush_s)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("session tracking: a batch could not be written to Redis", exc_info=True)
