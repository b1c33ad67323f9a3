"""Active-session tracking for ``/api/sessions``: which conversations are live, by whom, with how many requests.

A session is the client's own id when it sends one (``X-Session-Id``, ``X-OmniRoute-Session`` or ``Session-Id``;
prefixed ``ext:`` so it can never collide with a fingerprint), otherwise a fingerprint of the conversation: the
caller (key id or client address), the model, the system prompt, the first user message and the tools. Later
turns of one conversation repeat all of those, so they land in the same session; another conversation differs in
at least its first user message.

Recording stays off the request path: :meth:`SessionTracker.touch` only updates an in-process batch, and a
background task (:class:`~omniroute_edge.flusher.Flusher`) writes the batch to Redis
(:mod:`omniroute_core.sessionkeys`) every ``flush_s``, adding request counts with ``HINCRBY`` so several edge
replicas sum correctly. The batch is one Lua script call per :data:`_CHUNK` sessions: every request of a
benchmark (or of an API client that never sends a second turn) is a new session, and seven pipelined commands
per session cost the edge more CPU than the request they record. A Redis outage loses at most the counts of the
batches it interrupts; it never delays or fails a request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.sessionkeys import ANONYMOUS, SESSION_BY_KEY, SESSION_INDEX, SESSION_PREFIX, SESSION_TTL_MS
from omniroute_edge.flusher import Flusher

__all__ = ["SessionTracker", "session_id"]

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


# sessions per script call: a call runs 7 commands per session inside Redis, which serves nobody else meanwhile
_CHUNK = 500

# KEYS: 1 the index, then per session its hash and its key's index. ARGV: 1 ttl ms, 2 the index's cutoff (ms;
# older members are pruned), then per session its id, key id, model, first and last request (ms) and request
# count. The commands (and so what a reader sees) are those the batch used to pipeline, in the same order.
_RECORD = """
local ttl = ARGV[1]
for i = 0, (#KEYS - 1) / 2 - 1 do
  local key, owner = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local a = 3 + 6 * i
  local sid, last = ARGV[a], ARGV[a + 4]
  redis.call('HSETNX', key, 'createdAt', ARGV[a + 3])
  redis.call('HSET', key, 'keyId', ARGV[a + 1], 'model', ARGV[a + 2], 'lastActive', last)
  redis.call('HINCRBY', key, 'requestCount', ARGV[a + 5])
  redis.call('PEXPIRE', key, ttl)
  redis.call('ZADD', KEYS[1], last, sid)
  redis.call('ZADD', owner, last, sid)
  redis.call('PEXPIRE', owner, ttl)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
return 0
"""


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
        self._record = redis.register_script(_RECORD)
        self._ttl_ms = ttl_ms
        self._max_pending = max_pending
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._flusher = Flusher(self.flush, interval_s=flush_s, name="session-tracker")

    def touch(self, session: str, key_id: str, model: str) -> None:
        now = int(self._clock() * 1000)
        entry = self._pending.get(session)
        if entry is None:
            self._pending[session] = _Pending(key_id, model, 1, now, now)
            if len(self._pending) >= self._max_pending:
                self._flusher.wake()
        else:
            entry.count += 1
            entry.last_ms = now
            entry.model = model

    async def start(self) -> None:
        await self._flusher.start()

    async def stop(self) -> None:
        await self._flusher.stop()

    async def flush(self) -> None:
        """Write the current batch (a no-op when it is empty)."""
        if not self._pending:
            return
        batch, self._pending = list(self._pending.items()), {}
        now = int(self._clock() * 1000)
        for start in range(0, len(batch), _CHUNK):
            keys: list[str] = [SESSION_INDEX]
            args: list[str | int] = [self._ttl_ms, now - self._ttl_ms]
            for sid, entry in batch[start : start + _CHUNK]:
                keys += (SESSION_PREFIX + sid, SESSION_BY_KEY + (entry.key_id or ANONYMOUS))
                args += (sid, entry.key_id, entry.model, entry.first_ms, entry.last_ms, entry.count)
            await self._record(keys, args)
