"""Announces the newest configuration snapshot on NATS (the control plane → data plane seam).

After every committed change the routers call :meth:`Publisher.announce`. A single background task reads the
newest snapshot from PostgreSQL and writes it to the KV key with a compare-and-set on the key's revision, so:

- the version in the bucket never goes backwards, whoever writes (several dashboard replicas, a stale reader);
- a NATS outage only delays publication: the task retries with backoff, and republishes after every reconnect;
- when the bucket holds a version at or past the database's but not the database's content (the database was
  restored from a backup or recreated under a live NATS), the database's version is raised above the bucket's
  and the current content is published under it, so data-plane services never ignore it as stale. Hence the
  published version is always a version the database handed out.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from omniroute_core import jsonx
from omniroute_core.events import CONFIG_KEY, config_bucket
from omniroute_dashboard.metrics import DashboardMetrics
from omniroute_dashboard.store import Pool, bump_version, load_snapshot

__all__ = ["Publisher"]

log = logging.getLogger(__name__)

_MAX_ROUNDS = 8


class Publisher:
    """Owns the dashboard's NATS connection and the publication task. ``start`` never blocks on NATS."""

    def __init__(
        self,
        pool: Pool,
        nats_url: str,
        metrics: DashboardMetrics,
        *,
        retry_s: float = 0.25,
        max_retry_s: float = 2.0,
    ) -> None:
        self._pool = pool
        self._url = nats_url
        self._metrics = metrics
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._nc = NATS()
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._published = 0
        # True once a connection attempt failed or the connection dropped, until NATS answers again: then
        # announce() answers at once instead of making the API wait for an outage
        self._nats_down = False
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._nc.is_connected

    @property
    def published_version(self) -> int:
        """The newest version known to be in the bucket (0 before the first publication)."""
        return self._published

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="config-publisher")

    async def stop(self) -> None:
        task = self._task
        # Re-cancel until it ends: on Python 3.11, asyncio.wait_for (used inside nats-py and asyncpg) can swallow
        # a cancellation that races with the completion of what it waits for.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("config publisher had crashed", exc_info=task.exception())
        if not self._nc.is_closed:
            await self._nc.close()

    def notify(self) -> None:
        """Ask for a publication of whatever is newest in the database (cheap; coalesces bursts)."""
        self._wake.set()

    async def announce(self, version: int, wait_s: float) -> bool:
        """Request publication and wait up to ``wait_s`` until ``version`` (or newer) is in the bucket.

        Returns False on timeout or when NATS is known to be down (then without waiting); publication continues
        in the background either way, so a caller never fails because of NATS.
        """
        self.notify()
        if self._nats_down:
            return False
        try:
            async with asyncio.timeout(wait_s), self._progress:
                await self._progress.wait_for(lambda: self._published >= version)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        await self._connect()
        js = self._nc.jetstream(timeout=2.0)
        delay = self._retry_s
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._publish_newest(js)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._metrics.publishes.labels("error").inc()
                log.warning("config publication failed; retrying in %.2fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_s)
                self._wake.set()
            else:
                delay = self._retry_s

    async def _connect(self) -> None:
        # The options of omniroute_core.events.connect, on a client we own: its initial connect retries forever
        # while NATS is down, and owning the client lets stop() close it even mid-connect.
        async def on_error(exc: Exception) -> None:
            self._nats_down = not self._nc.is_connected
            log.warning("nats error: %s", exc)

        async def on_disconnect() -> None:
            self._nats_down = True

        async def on_reconnect() -> None:
            self._nats_down = False
            log.info("nats reconnected; republishing the config snapshot if needed")
            self.notify()

        await self._nc.connect(
            servers=[self._url],
            name="omniroute-dashboard",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # annotated int, used as a float sleep
            connect_timeout=2,
            error_cb=on_error,
            reconnected_cb=on_reconnect,
            disconnected_cb=on_disconnect,
        )
        self._nats_down = False

    async def _publish_newest(self, js: JetStreamContext) -> None:
        kv = await config_bucket(js)
        for _ in range(_MAX_ROUNDS):
            snap = await load_snapshot(self._pool)
            try:
                entry = await kv.get(CONFIG_KEY)
            except KeyNotFoundError:
                entry = None
            try:
                if entry is None:
                    await kv.create(CONFIG_KEY, snap.to_json())
                    await self._mark(snap.version, "published")
                    return
                current = _version_of(entry.value)
                if current < snap.version:
                    await kv.update(CONFIG_KEY, snap.to_json(), last=entry.revision)
                    await self._mark(snap.version, "published")
                    return
            except KeyWrongLastSequenceError:
                continue  # another writer got there first: look again
            if current == snap.version and entry.value == snap.to_json():
                await self._mark(current, "current")
                return
            # The bucket is at or past our version with other content: raise the database's version above it,
            # so the next round publishes the database state under a version the data plane will accept.
            log.warning(
                "config bucket holds version %d, at or past the database's %d but not its content; raising the "
                "database version above the bucket's",
                current,
                snap.version,
            )
            async with self._pool.acquire() as conn, conn.transaction():
                await bump_version(conn, at_least=current)
        raise RuntimeError(f"config publication did not settle after {_MAX_ROUNDS} rounds")

    async def _mark(self, version: int, outcome: str) -> None:
        self._metrics.publishes.labels(outcome).inc()
        async with self._progress:
            if version > self._published:
                self._published = version
                self._metrics.published_version.set(version)
                if outcome == "published":
                    log.info("config snapshot published", extra={"config_version": version})
            self._progress.notify_all()


def _version_of(value: bytes | None) -> int:
    """The version of a published document; -1 for an empty or malformed one (so it gets overwritten)."""
    if not value:
        return -1
    try:
        return int(jsonx.loads(value)["version"])
    except (ValueError, KeyError, TypeError):
        return -1
