"""Breaker, cooldown and lockout records shared by every executor replica through Redis.

Layout (:mod:`omniroute_core.health`, which the dashboard reads too): one hash ``<prefix>:<epoch>`` whose fields
are target keys (``conn:<id>``, ``prov:<id>``, ``lock:<connection>:<fingerprint>:<model>``) and whose values are
the JSON of :class:`Health`; a half-open probe slot is the key ``<prefix>:<epoch>:probe:<target>``
taken with ``SET NX PX`` so exactly one request across all replicas probes. The epoch comes from the published
config (``settings.resilience.resetEpoch``): ``POST /api/resilience/reset`` bumps it, so every replica starts
from clean records as soon as it applies that snapshot, and the abandoned hash expires by itself.

Reads are served from a local copy of the hash refreshed at most every ``refresh_s`` (one ``HGETALL``), so what
one replica writes (an opened breaker, a cooldown, a reset) takes effect on the others within ``refresh_s``
plus one round trip; nothing is read from Redis on the hot path in between. Writes happen only on failures
and on the first success after one, as a read-modify-write of one field: concurrent failures on two replicas can
each count once (the breaker opens a little later), which is the price of not running scripts in Redis.

When Redis is unreachable (or ``redis`` is None) the store keeps working on its local copy alone, retrying
Redis after ``retry_s``: breakers then act per replica rather than not at all.

The store also carries the :class:`RateLimitRecorder` (``observe_response``), the per-connection record of what
providers' rate-limit headers said, written in the background.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from omniroute_core import jsonx
from omniroute_core.health import HEALTH_PREFIX, decode_health, health_hash
from omniroute_executor.resilience.breaker import Health, Profile, after_failure, locked_out
from omniroute_executor.resilience.ratelimits import RateLimitRecorder

__all__ = ["HealthStore"]

log = logging.getLogger(__name__)
_CLEAN = Health()
_TTL_S = 86_400  # an abandoned epoch's hash disappears after a day without writes


class HealthStore:
    def __init__(
        self,
        redis: Redis | None,
        *,
        prefix: str = HEALTH_PREFIX,
        refresh_s: float = 0.25,
        retry_s: float = 2.0,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._refresh_ms = int(refresh_s * 1000)
        self._retry_ms = int(retry_s * 1000)
        self._clock_ms = clock_ms
        self._epoch = "0"
        self._local: dict[str, Health] = {}
        self._probes: dict[str, int] = {}  # local probe slots, used while Redis is unavailable
        self._fetched_ms = -(10**15)
        self._down_until_ms = 0
        self.rate_limits = RateLimitRecorder(redis)

    def now_ms(self) -> int:
        return self._clock_ms()

    @property
    def _hash(self) -> str:
        return health_hash(self._epoch, self._prefix)

    def observe_response(self, connection_id: str, status: int, headers: Mapping[str, str]) -> None:
        """Note a provider response's rate-limit headers for the connection (no I/O on the caller's path)."""
        self.rate_limits.observe(connection_id, status, headers)

    async def close(self) -> None:
        await self.rate_limits.close()

    def use_epoch(self, epoch: str) -> None:
        """Switch to the records of ``epoch`` (from the config snapshot); a new epoch starts clean."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._local.clear()
            self._probes.clear()
            self._fetched_ms = -(10**15)

    def get(self, key: str) -> Health:
        return self._local.get(key, _CLEAN)

    @property
    def quiet(self) -> bool:
        """No record at all (the usual state): nothing is blocked or half-open, so callers may skip the lookups."""
        return not self._local

    def blocked_until(self, *keys: str) -> int:
        """The latest block among ``keys`` (0: all usable, a half-open one counts as usable)."""
        if not self._local:
            return 0
        now = self.now_ms()
        return max((self.get(k).blocked_until(now) for k in keys), default=0)

    async def refresh(self, *, force: bool = False) -> None:
        """Reload the shared records when the local copy is older than ``refresh_s`` (or ``force``)."""
        now = self.now_ms()
        if not force and now - self._fetched_ms < self._refresh_ms:
            return
        self._fetched_ms = now
        if not self._usable(now):
            return
        assert self._redis is not None
        try:
            raw = await self._redis.hgetall(self._hash)
        except (RedisError, OSError) as exc:
            self._down(now, exc)
            return
        self._local = {_text(k): decode_health(v) for k, v in raw.items()}

    async def admit(self, *keys: str, profiles: tuple[Profile, ...]) -> bool:
        """May a request go to the target made of ``keys`` now? A half-open key admits one probe at a time."""
        if not self._local:
            return True
        now = self.now_ms()
        if self.blocked_until(*keys):
            return False
        for key, profile in zip(keys, profiles, strict=True):
            if self.get(key).half_open(now) and not await self._take_probe(key, profile, now):
                return False
        return True

    async def failure(self, key: str, profile: Profile, *, rate_limited: bool = False, retry_after_ms: int = 0) -> None:
        """Record one failed attempt of ``key``."""
        now = self.now_ms()
        current = await self._fresh(key, now)
        updated = after_failure(current, profile, now, rate_limited=rate_limited, retry_after_ms=retry_after_ms)
        await self._write(key, updated, now)
        await self._free_probe(key, now)

    async def lock_out(self, key: str, profile: Profile, status: int) -> None:
        """Lock a model out on a connection (``key`` from :func:`omniroute_core.health.lockout_key`)."""
        now = self.now_ms()
        await self._write(key, locked_out(profile, now, status), now)

    async def success(self, key: str) -> None:
        """Record a successful attempt: closes the breaker and ends any cooldown (no write when already clean)."""
        record = self._local.get(key)
        if record is None or record.clean:
            return
        now = self.now_ms()
        self._local.pop(key, None)
        if self._usable(now):
            assert self._redis is not None
            try:
                await self._redis.hdel(self._hash, key)
            except (RedisError, OSError) as exc:
                self._down(now, exc)
        await self._free_probe(key, now)

    async def reset(self, key: str | None = None) -> None:
        """Forget one target's record, or all of them (this epoch)."""
        now = self.now_ms()
        if key is None:
            self._local.clear()
            self._probes.clear()
        else:
            self._local.pop(key, None)
            self._probes.pop(key, None)
        if self._usable(now):
            assert self._redis is not None
            try:
                if key is None:
                    await self._redis.delete(self._hash)
                else:
                    await self._redis.hdel(self._hash, key)
            except (RedisError, OSError) as exc:
                self._down(now, exc)

    def snapshot(self) -> dict[str, Health]:
        """The local copy of every non-clean record (for availability reports)."""
        return dict(self._local)

    async def _fresh(self, key: str, now: int) -> Health:
        if self._usable(now):
            assert self._redis is not None
            try:
                raw = await self._redis.hget(self._hash, key)
                self._local[key] = decode_health(raw)
            except (RedisError, OSError) as exc:
                self._down(now, exc)
        return self.get(key)

    async def _write(self, key: str, health: Health, now: int) -> None:
        self._local[key] = health
        if not self._usable(now):
            return
        assert self._redis is not None
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(self._hash, key, jsonx.dumps(health.encode()))
                pipe.expire(self._hash, _TTL_S)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._down(now, exc)

    async def _take_probe(self, key: str, profile: Profile, now: int) -> bool:
        if self._usable(now):
            assert self._redis is not None
            try:
                taken = await self._redis.set(f"{self._hash}:probe:{key}", b"1", nx=True, px=profile.probe_timeout_ms)
                return bool(taken)
            except (RedisError, OSError) as exc:
                self._down(now, exc)
        if self._probes.get(key, 0) > now:
            return False
        self._probes[key] = now + profile.probe_timeout_ms
        return True

    async def _free_probe(self, key: str, now: int) -> None:
        self._probes.pop(key, None)
        if self._usable(now):
            assert self._redis is not None
            try:
                await self._redis.delete(f"{self._hash}:probe:{key}")
            except (RedisError, OSError) as exc:
                self._down(now, exc)

    def _usable(self, now: int) -> bool:
        return self._redis is not None and now >= self._down_until_ms

    def _down(self, now: int, exc: Exception) -> None:
        self._down_until_ms = now + self._retry_ms
        log.warning("redis unavailable for breakers and cooldowns; using local state", extra={"error": str(exc)})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
