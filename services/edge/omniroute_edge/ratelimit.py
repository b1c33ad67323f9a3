"""Per-key rate limits in Redis: requests and tokens per minute, and concurrent requests.

One Lua script (loaded once, then run with EVALSHA) checks and records a request atomically, so every edge
replica shares the same counters and two replicas can never both take the last slot.

- **Requests and tokens per minute: a sliding log.** Each admitted request is a member ``<id>:<tokens>`` of a
  sorted set scored by its admission time (Redis's own clock, so replicas' clocks do not matter); a running sum
  holds the tokens of the members still in the window. Unlike a fixed window it never lets 2x the limit through
  around a minute boundary, and unlike a sliding-window *counter* it is exact, which the ``remaining`` and
  ``reset`` headers promise. The cost is one set member per request in the last minute (bounded by ``rpm``; a
  key with only a ``tpm`` limit keeps at most ``tpm`` members since every request weighs at least one token).
  Refused requests are not recorded, so a client hammering a full window does not push its own reset back.
- **Tokens are an estimate made before the call**: the request's output cap (the route's ``max_tokens``-like
  field) plus one token per 4 bytes of body for the prompt. It is not corrected from the real usage afterwards
  (that would cost a second round trip per request); a request estimated above the whole ``tpm`` limit is
  counted as exactly ``tpm``, so it is admitted into an empty window instead of never.
- **Concurrent requests**: a counter incremented on admission and decremented by :meth:`RateLimiter.release`
  when the reply ends (also when the client disconnects). Its TTL, refreshed on each admission, is the request
  deadline plus a margin: slots held by an edge that crashed mid-request free themselves then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from omniroute.v1 import common_pb2
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import RateLimits

__all__ = ["Decision", "RateLimiter", "estimate_tokens"]

WINDOW_MS = 60_000

# KEYS: 1 request log (zset), 2 token sum, 3 in-flight counter.
# ARGV: 1 window ms, 2 rpm, 3 tpm, 4 concurrent (0 = no limit), 5 tokens, 6 request id, 7 in-flight ttl ms.
# Returns {reason ('' when admitted), requests in window, tokens in window, ms until the oldest leaves, retry ms}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local rpm, tpm, conc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens = tonumber(ARGV[5])
if tpm > 0 and tokens > tpm then tokens = tpm end
local logged = rpm > 0 or tpm > 0
local count, used, reset = 0, 0, 0
if logged then
  local cutoff = now - window
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if #expired > 0 then
    local freed = 0
    for _, m in ipairs(expired) do freed = freed + tonumber(string.match(m, ':(%d+)$')) end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
    redis.call('DECRBY', KEYS[2], freed)
  end
  count = redis.call('ZCARD', KEYS[1])
  used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if count == 0 then used = 0 end
  if count > 0 then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    reset = tonumber(oldest[2]) + window - now
  end
end
local inflight = tonumber(redis.call('GET', KEYS[3]) or '0')
local reason, retry = '', 0
if rpm > 0 and count >= rpm then
  reason = 'requests'
  local e = redis.call('ZRANGE', KEYS[1], count - rpm, count - rpm, 'WITHSCORES')
  retry = tonumber(e[2]) + window - now
elseif tpm > 0 and used + tokens > tpm then
  reason = 'tokens'
  local need = used + tokens - tpm
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local freed = 0
  for i = 1, #entries, 2 do
    freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
    if freed >= need then
      retry = tonumber(entries[i + 1]) + window - now
      break
    end
  end
elseif conc > 0 and inflight >= conc then
  reason = 'concurrent'
  retry = 1000
end
if reason == '' then
  if logged then
    if count == 0 then redis.call('SET', KEYS[2], 0) end
    redis.call('ZADD', KEYS[1], now, ARGV[6] .. ':' .. tokens)
    redis.call('INCRBY', KEYS[2], tokens)
    redis.call('PEXPIRE', KEYS[1], window)
    redis.call('PEXPIRE', KEYS[2], window)
    count = count + 1
    used = used + tokens
    if count == 1 then reset = window end
  end
  if conc > 0 then
    redis.call('INCR', KEYS[3])
    redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[7]))
  end
end
return {reason, count, used, reset, retry}
"""

# never below zero: the counter may have expired (TTL safety net) while the request was running
_RELEASE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check. ``headers`` go on the reply (refused or not); ``error`` is set when refused."""

    headers: list[tuple[bytes, bytes]]
    error: common_pb2.Error | None
    holds_slot: bool  # True: release() must be called when the request ends


def estimate_tokens(doc: dict[str, Any], body_size: int, max_tokens_paths: tuple[tuple[str, ...], ...]) -> int:
    """Prompt (body bytes / 4, at least 1) plus the first output cap found at one of ``max_tokens_paths``."""
    cap = 0
    for path in max_tokens_paths:
        node: Any = doc
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, int) and not isinstance(node, bool) and node > 0:
            cap = node
            break
    return max(1, body_size // 4) + cap


def _duration(ms: int) -> str:
    """OpenAI's reset format: ``1m0s``-style durations, here with millisecond precision (``12.345s``)."""
    ms = max(0, ms)
    minutes, rest = divmod(ms, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, *, inflight_ttl_ms: int, prefix: str = "omr:rl") -> None:
        self._redis = redis
        self._inflight_ttl_ms = inflight_ttl_ms
        self._prefix = prefix
        self._admit_sha = ""
        self._release_sha = ""

    def _keys(self, key_id: str) -> list[str]:
        # one hash tag per API key: the three keys live on one Redis Cluster slot, as a script requires
        base = f"{self._prefix}:{{{key_id}}}"
        return [base + ":log", base + ":tokens", base + ":inflight"]

    async def _eval(self, source: str, sha_attr: str, keys: list[str], args: list[Any]) -> Any:
        sha: str = getattr(self, sha_attr)
        if sha:
            try:
                return await self._redis.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                pass  # Redis restarted or flushed its script cache: load it again
        sha = await self._redis.script_load(source)
        setattr(self, sha_attr, sha)
        return await self._redis.evalsha(sha, len(keys), *keys, *args)

    async def admit(self, key_id: str, limits: RateLimits, tokens: int, request_id: str) -> Decision:
        """Check ``limits`` for ``key_id`` and record the request when admitted (one Redis round trip).

        Raises Redis errors (the caller decides whether to fail open).
        """
        rpm, tpm, conc = limits.rpm or 0, limits.tpm or 0, limits.concurrent or 0
        args = [WINDOW_MS, rpm, tpm, conc, tokens, request_id, self._inflight_ttl_ms]
        raw = await self._eval(_ADMIT, "_admit_sha", self._keys(key_id), args)
        reason = raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0])
        count, used, reset_ms, retry_ms = (int(v) for v in raw[1:5])
        headers: list[tuple[bytes, bytes]] = []
        if rpm:
            headers += [
                (b"x-ratelimit-limit-requests", str(rpm).encode()),
                (b"x-ratelimit-remaining-requests", str(max(0, rpm - count)).encode()),
                (b"x-ratelimit-reset-requests", _duration(reset_ms).encode()),
            ]
        if tpm:
            headers += [
                (b"x-ratelimit-limit-tokens", str(tpm).encode()),
                (b"x-ratelimit-remaining-tokens", str(max(0, tpm - used)).encode()),
                (b"x-ratelimit-reset-tokens", _duration(reset_ms).encode()),
            ]
        if conc:
            headers.append((b"x-ratelimit-limit-concurrent", str(conc).encode()))
        if not reason:
            return Decision(headers, None, holds_slot=conc > 0)
        limit = {"requests": rpm, "tokens": tpm, "concurrent": conc}[reason]
        what = {"requests": "requests per minute", "tokens": "tokens per minute", "concurrent": "concurrent requests"}
        error = hub_error(
            429,
            f"rate limit reached for this API key: {limit} {what[reason]}; retry after {_duration(retry_ms)}",
            code=f"rate_limit_{reason}",
            retry_after_ms=max(1000, retry_ms),
        )
        return Decision(headers, error, holds_slot=False)

    async def release(self, key_id: str) -> None:
        """Free the concurrency slot taken by an admitted request."""
        await self._eval(_RELEASE, "_release_sha", self._keys(key_id)[2:], [])
