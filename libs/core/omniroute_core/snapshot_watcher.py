"""Following the published configuration snapshot: the data plane's side of :mod:`omniroute_core.snapshot`.

The edge and the executor each run one :class:`SnapshotWatcher` on the NATS KV key the dashboard publishes to and
read ``current`` on every request (an attribute read: no lock, no I/O on the request path).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from omniroute_core.events import CONFIG_KEY, config_bucket
from omniroute_core.snapshot import EMPTY, ConfigSnapshot, parse_snapshot

__all__ = ["SnapshotWatcher"]

log = logging.getLogger(__name__)


class SnapshotWatcher:
    """Keeps ``current`` equal to the newest published snapshot.

    ``start()`` returns once the first value was read (or immediately with an empty snapshot when nothing was
    published yet); a background task then follows every update. A KV watch is an ephemeral consumer that dies
    silently with a NATS restart, so a poll of the key's revision every ``poll_s`` runs beside it: a revision
    the watch did not deliver is applied at once and the watch is re-created.
    """

    def __init__(
        self,
        js: JetStreamContext,
        on_change: Callable[[ConfigSnapshot], None] | None = None,
        *,
        poll_s: float = 1.0,
    ) -> None:
        self._js = js
        self._on_change = on_change
        self._poll_s = poll_s
        self.current: ConfigSnapshot = EMPTY
        self._revision = 0
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()

    async def start(self, timeout: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run(), name="snapshot-watcher")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), timeout)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _apply(self, data: bytes) -> None:
        try:
            snap = parse_snapshot(data)
        except (ValueError, KeyError, TypeError):
            log.exception("ignoring a malformed config snapshot")
            return
        if snap.version >= self.current.version:
            self.current = snap
            log.info("config snapshot applied", extra={"config_version": snap.version})
            if self._on_change:
                self._on_change(snap)

    async def _run(self) -> None:
        while True:
            try:
                kv = await config_bucket(self._js)
                watcher = await kv.watch(CONFIG_KEY)
                tasks = {
                    asyncio.create_task(self._follow(watcher)),
                    asyncio.create_task(self._notice_missed(kv)),
                }
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()  # surface an exception from the watch
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("config watch interrupted; retrying", exc_info=True)
                await asyncio.sleep(0.5)

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # initial values delivered (none, or all of them)
                self._first.set()
                continue
            self._revision = max(self._revision, entry.revision or 0)
            if entry.value:
                self._apply(entry.value)
            self._first.set()

    async def _notice_missed(self, kv: KeyValue) -> None:
        """Return once the key holds a revision the watch did not deliver (after applying it)."""
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                entry = await kv.get(CONFIG_KEY)
            except KeyNotFoundError:
                continue
            except Exception as exc:  # NATS down: keep serving the last snapshot, look again later
                log.debug("config poll failed", extra={"error": str(exc)})
                continue
            if (entry.revision or 0) > self._revision:
                self._revision = entry.revision or 0
                if entry.value:
                    self._apply(entry.value)
                log.warning("config watch missed an update; re-creating it")
                return
