"""The semantic tier: behind the exact tier, a stored reply answers a request that asks the same question in
other words, under the same scope.

On an exact-tier miss of a cache-eligible request, :meth:`SemanticCache.lookup` splits the request into its last
user turn and the rest (:mod:`._turns`), embeds the turn through the executor (:mod:`._embed`) and searches the
vector store (:mod:`._store`) for a live point with the same scope hash (caller, route, and the whole request
but that turn), the same content signature (:mod:`._match`) and a cosine of at least the configured threshold.
A point names the exact-tier key of its reply, so a hit replays the same stored bytes as an exact hit, and a point
whose reply is gone (expired, evicted, cleared) is dropped. After a miss is served, :meth:`SemanticCache.remember`
stores the question's point, expiring with its reply.

The tier never fails a request: an embedding or store error, a timeout, or too many lookups in flight make the
request a miss (and a failure pauses the tier briefly, so a broken dependency costs one slow request per pause,
not one per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.cachesettings import SemanticSetting, semantic_setting
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_edge.cache import ExactCache
from omniroute_edge.replies import StoredReply
from omniroute_edge.semantic._embed import INPUT_WINDOWS, Embedder
from omniroute_edge.semantic._match import signature
from omniroute_edge.semantic._store import StoredPoint, VectorStore, space_name
from omniroute_edge.semantic._turns import TURNS, split_last_turn

__all__ = ["Probe", "SemanticCache", "SemanticLimits", "SemanticMetrics", "SettingView"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SemanticLimits:
    ttl_s: float = 3600.0  # a point lives as long as its reply in the exact tier
    max_points: int = 10_000  # per embedding model; the oldest go first
    max_chars: int = 2000  # longer questions are left to the exact tier (embedding cost, truncation)
    embed_timeout_s: float = 2.0
    store_timeout_s: float = 0.5  # a search (and the deletion of a stale point) that takes longer is a miss
    max_inflight: int = 32  # lookups beyond this are misses; pending writes beyond this are dropped
    pause_s: float = 5.0  # after a failure, the tier is skipped this long
    sweep_interval_s: float = 30.0


@dataclass(slots=True)
class Probe:
    """One lookup: where its point would go, and the reply it found (if any)."""

    space: str
    scope: str
    signature: str
    vector: list[float]
    hit: StoredReply | None = None


class SemanticMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.lookups = Counter(
            "omniroute_edge_semantic_cache_lookups",
            "Semantic tier lookups after an exact-tier miss, by outcome (hit, miss, skipped, error; dropped: a write"
            " beyond the pending limit)",
            ["outcome"],
            registry=registry,
        )
        self.points = Gauge(
            "omniroute_edge_semantic_cache_points",
            "Points in this edge's vector store (counted at each sweep and after a clear)",
            registry=registry,
        )


class SettingView:
    """The ``cache.semantic`` setting of the current config snapshot, parsed once per snapshot version."""

    def __init__(self, snapshot: Callable[[], ConfigSnapshot]) -> None:
        self._snapshot = snapshot
        self._version = -1
        self._setting = SemanticSetting()

    def __call__(self) -> SemanticSetting:
        snap = self._snapshot()
        if snap.version != self._version:
            self._setting = semantic_setting(snap.settings.get("cache"))
            self._version = snap.version
        return self._setting


class SemanticCache:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        replies: ExactCache,
        setting: Callable[[], SemanticSetting],
        metrics: SemanticMetrics,
        limits: SemanticLimits = SemanticLimits(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._replies = replies
        self._setting = setting
        self._metrics = metrics
        self._limits = limits
        self._clock = clock
        self._inflight = 0
        self._paused_until = 0.0
        self._stored_since_sweep = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._sweep_now = asyncio.Event()
        self._writes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._store.open()
        self._replies.on_clear(self.clear)
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="semantic-cache-sweeper")

    async def stop(self) -> None:
        await self.flush()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self._store.close()

    async def lookup(
        self, fmt: common_pb2.Format.ValueType, scope: str, path: str, doc: Mapping[str, Any], request_id: str
    ) -> Probe | None:
        """The probe of an eligible request after an exact-tier miss; None when the tier does not apply (or
        failed). ``scope`` is the caller (key id, or ``ip:<address>``)."""
        setting = self._setting()
        shape = TURNS.get(fmt)
        if not setting.enabled or shape is None:
            return None
        split = split_last_turn(doc, shape)
        if split is None or len(split[0]) > self._limits.max_chars:
            return self._skip()
        text, rest = split
        words = signature(text)
        if not words:
            return self._skip()
        if self._clock() < self._paused_until or self._inflight >= self._limits.max_inflight:
            return self._skip()
        self._inflight += 1
        try:
            embedding = await self._embedder.embed(
                setting.model,
                text,
                key_id="" if scope.startswith("ip:") else scope,
                request_id=request_id + "-semantic",
                timeout_s=self._limits.embed_timeout_s,
            )
            window = INPUT_WINDOWS.get(setting.model, 0)
            if window and embedding.tokens >= window:
                return self._skip()
            probe = Probe(
                space=space_name(setting.model),
                scope=_digest(scope, path, jsonx.dumps(rest, sort_keys=True)),
                signature=_digest(*words),
                vector=embedding.vector,
            )
            found = await asyncio.wait_for(
                self._store.search(
                    probe.space,
                    probe.vector,
                    scope=probe.scope,
                    signature=probe.signature,
                    now=self._clock(),
                    threshold=setting.threshold,
                ),
                self._limits.store_timeout_s,
            )
            if found is not None:
                probe.hit = await self._replies.get(found.key, count=False)
                if probe.hit is None:  # its reply expired or was evicted: the point goes too
                    await asyncio.wait_for(self._store.delete(probe.space, found.id), self._limits.store_timeout_s)
            self._metrics.lookups.labels("hit" if probe.hit else "miss").inc()
            return probe
        except Exception as exc:
            self._fail("lookup", exc)
            return None
        finally:
            self._inflight -= 1

    def remember(self, probe: Probe, key: str) -> None:
        """Store the question of ``probe`` as answered by the exact-tier entry ``key`` (just stored), in the
        background: the request that produced the reply does not wait for the store (a new space's first write
        creates its shard, which takes most of a second). Writes beyond ``max_inflight`` pending are dropped."""
        if len(self._writes) >= self._limits.max_inflight:
            self._metrics.lookups.labels("dropped").inc()
            return
        task = asyncio.ensure_future(self._write(probe, key))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Wait for the pending writes."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def _write(self, probe: Probe, key: str) -> None:
        now = self._clock()
        point = StoredPoint(
            id=str(uuid.UUID(hashlib.sha256(key.encode()).hexdigest()[:32])),
            vector=probe.vector,
            scope=probe.scope,
            signature=probe.signature,
            key=key,
            expires_at=now + self._limits.ttl_s,
            stored_at=now,
        )
        try:
            await self._store.upsert(probe.space, point)
        except Exception as exc:
            self._fail("store", exc)
            return
        self._stored_since_sweep += 1
        if self._stored_since_sweep > max(1, self._limits.max_points // 10):
            self._sweep_now.set()

    async def clear(self) -> None:
        try:
            await self._store.clear()
            self._metrics.points.set(await self._store.count())
        except Exception:
            log.warning("could not clear the semantic cache", exc_info=True)

    async def size(self) -> int:
        return await self._store.count()

    async def sweep(self) -> int:
        self._stored_since_sweep = 0
        removed = await self._store.sweep(self._clock(), self._limits.max_points)
        self._metrics.points.set(await self._store.count())
        return removed

    def _skip(self) -> Probe | None:
        self._metrics.lookups.labels("skipped").inc()
        return None

    def _fail(self, what: str, exc: BaseException) -> None:
        self._metrics.lookups.labels("error").inc()
        if self._clock() >= self._paused_until:
            log.warning(
                "semantic cache %s failed; requests skip the semantic tier for %.0fs",
                what,
                self._limits.pause_s,
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
        self._paused_until = self._clock() + self._limits.pause_s

    async def _sweep_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_now.wait(), self._limits.sweep_interval_s)
            self._sweep_now.clear()
            try:
                await self.sweep()
            except Exception:
                log.warning("semantic cache sweep failed", exc_info=True)


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()
