"""Publishing usage events to JetStream without slowing the request that produced them.

``emit`` only enqueues; a few worker tasks publish with ``Nats-Msg-Id`` set to the event id (so a retried
publish is stored once) and wait for JetStream's acknowledgement. When a publish fails (NATS unreachable, no
acknowledgement in time) the event goes to the disk :class:`~omniroute_executor.usage_spool.Spool`, and so do
the following ones until a replayer task has published everything spooled; requests never wait for NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, Counter

from omniroute.v1 import usage_pb2
from omniroute_core.events import USAGE_SUBJECT_PREFIX
from omniroute_executor.usage_spool import Spool

__all__ = ["UsagePublisher", "usage_subject"]

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^a-z0-9_-]")


def usage_subject(provider: str) -> str:
    return f"{USAGE_SUBJECT_PREFIX}.{_UNSAFE.sub('_', provider.lower()) or 'unknown'}"


class UsagePublisher:
    def __init__(
        self,
        js: JetStreamContext,
        registry: CollectorRegistry,
        *,
        queue_size: int,
        spool: Spool,
        workers: int = 4,
        publish_timeout_s: float = 2.0,
        replay_interval_s: float = 0.5,
    ) -> None:
        self._js = js
        self._queue: asyncio.Queue[usage_pb2.UsageEvent] = asyncio.Queue(queue_size)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._spool = spool
        self._timeout = publish_timeout_s
        self._replay_interval = replay_interval_s
        # set while spooled events wait for replay: new events join them rather than overtake NATS
        self._degraded = spool.pending()
        self._spooled = Counter(
            "omniroute_usage_events_spooled", "Usage events written to the disk spool", registry=registry
        )
        self._replayed = Counter(
            "omniroute_usage_events_replayed", "Spooled usage events published to JetStream", registry=registry
        )
        self._published = Counter(
            "omniroute_usage_events_published", "Usage events acknowledged by JetStream", registry=registry
        )
        self._dropped = Counter(
            "omniroute_usage_events_dropped", "Usage events dropped because the queue was full", registry=registry
        )

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"usage-publisher-{i}") for i in range(self._workers)]
        self._tasks.append(asyncio.create_task(self._replay_loop(), name="usage-spool-replayer"))

    def emit(self, event: usage_pb2.UsageEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._dropped.inc()
            log.error("usage queue full; event dropped", extra={"event_id": event.event_id})

    async def close(self, timeout: float = 5.0) -> None:
        """Publish or spool what is queued (up to ``timeout`` seconds), then stop. Spooled events are replayed
        by the next start."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._queue.empty():
            self._to_spool(self._queue.get_nowait())
        self._spool.close()

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                if self._degraded or not await self._publish(event):
                    self._to_spool(event)
            finally:
                self._queue.task_done()

    def _to_spool(self, event: usage_pb2.UsageEvent) -> None:
        if not self._degraded:
            log.warning("NATS unavailable: spooling usage events to disk", extra={"spool": str(self._spool.folder)})
        self._degraded = True
        self._spool.append(event.SerializeToString())
        self._spooled.inc()

    async def _publish(self, event: usage_pb2.UsageEvent) -> bool:
        """One publish, acknowledged by JetStream; False when it did not go through."""
        try:
            await self._js.publish(
                usage_subject(event.provider),
                event.SerializeToString(),
                headers={"Nats-Msg-Id": event.event_id},
                timeout=self._timeout,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("usage publish failed", extra={"error": str(exc), "event_id": event.event_id})
            return False
        self._published.inc()
        return True

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(self._replay_interval)
            if self._spool.pending():
                await self._replay()

    async def _replay(self) -> None:
        """Publish every spooled file, oldest first; stop at the first failure (retried next interval)."""
        for path in self._spool.take():
            for record in Spool.records(path):
                event = usage_pb2.UsageEvent.FromString(record)
                if not await self._publish(event):
                    return
                self._replayed.inc()
            path.unlink()
        if not self._spool.pending():
            self._degraded = False
            log.info("usage spool replayed; publishing directly again")
