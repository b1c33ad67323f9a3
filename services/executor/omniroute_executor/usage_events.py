"""Publishing usage events to JetStream without slowing the request that produced them.

``emit`` only enqueues; a few worker tasks publish the queued events in batches (one ``UsageEventBatch`` message
of up to ``max_batch`` events, collected for at most ``linger_s``: metering then costs one publish, one stored
message and one delivery per batch, not per request) with ``Nats-Msg-Id`` set to the batch id, and wait for
JetStream's acknowledgement; every event keeps its own id, so a re-published batch is still stored once.

When a publish fails (NATS unreachable, no acknowledgement in time) the events go to the disk
:class:`~omniroute_executor.usage_spool.Spool`, and so do the following ones until a replayer task has published
everything spooled; requests never wait for NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re

from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, Counter

from omniroute.v1 import usage_pb2
from omniroute_core.events import USAGE_BATCH_ENCODING, USAGE_ENCODING_HEADER, USAGE_SUBJECT_PREFIX
from omniroute_executor.usage_spool import Spool

__all__ = ["UsagePublisher", "new_event_id", "usage_subject"]

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^a-z0-9_-]")
# uuid4's fixed bits: the variant (10xx) and the version (0100)
_UUID4_CLEAR = ~(0xC000 << 48 | 0xF000 << 64)
_UUID4_SET = 0x8000 << 48 | 0x4000 << 64
_IDS_PER_READ = 256


class _EventIds:
    """Event ids in ``uuid.uuid4().hex``'s format and randomness, from one ``os.urandom`` read per 256 ids (the
    read is a system call, and uuid4 builds a UUID object around it)."""

    __slots__ = ("_at", "_random")

    def __init__(self) -> None:
        self._random = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)  # a forked child must not reuse the parent's bytes

    def _forget(self) -> None:
        self._random, self._at = b"", 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._random):
            self._random, at = os.urandom(16 * _IDS_PER_READ), 0
        self._at = at + 16
        return f"{int.from_bytes(self._random[at : at + 16], 'big') & _UUID4_CLEAR | _UUID4_SET:032x}"


new_event_id = _EventIds()


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
        workers: int = 2,
        publish_timeout_s: float = 2.0,
        replay_interval_s: float = 0.5,
        max_batch: int = 100,
        linger_s: float = 0.02,
    ) -> None:
        self._js = js
        self._queue: asyncio.Queue[usage_pb2.UsageEvent] = asyncio.Queue(queue_size)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._spool = spool
        self._timeout = publish_timeout_s
        self._replay_interval = replay_interval_s
        self._max_batch = max_batch
        self._linger = linger_s
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
            batch = [await self._queue.get()]
            self._drain_into(batch)
            if len(batch) < self._max_batch and self._linger:
                await asyncio.sleep(self._linger)  # let a few more arrive: the request paths never wait for this
                self._drain_into(batch)
            try:
                if self._degraded or not await self._publish(batch):
                    for event in batch:
                        self._to_spool(event)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _drain_into(self, batch: list[usage_pb2.UsageEvent]) -> None:
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    def _to_spool(self, event: usage_pb2.UsageEvent) -> None:
        if not self._degraded:
            log.warning("NATS unavailable: spooling usage events to disk", extra={"spool": str(self._spool.folder)})
        self._degraded = True
        self._spool.append(event.SerializeToString())
        self._spooled.inc()

    async def _publish(self, batch: list[usage_pb2.UsageEvent]) -> bool:
        """One batch, acknowledged by JetStream; False when it did not go through."""
        body = usage_pb2.UsageEventBatch(events=batch).SerializeToString()
        headers = {"Nats-Msg-Id": "batch-" + batch[0].event_id, USAGE_ENCODING_HEADER: USAGE_BATCH_ENCODING}
        try:
            # one subject per batch: the subject's provider part is informational (the writer reads them all)
            await self._js.publish(usage_subject(batch[0].provider), body, headers=headers, timeout=self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("usage publish failed", extra={"error": str(exc), "events": len(batch)})
            return False
        self._published.inc(len(batch))
        return True

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(self._replay_interval)
            if self._spool.pending():
                await self._replay()

    async def _replay(self) -> None:
        """Publish every spooled file, oldest first; stop at the first failure (retried next interval)."""
        for path in self._spool.take():
            events = [usage_pb2.UsageEvent.FromString(record) for record in Spool.records(path)]
            for start in range(0, len(events), self._max_batch):
                batch = events[start : start + self._max_batch]
                if not await self._publish(batch):
                    return
                self._replayed.inc(len(batch))
            path.unlink()
        if not self._spool.pending():
            self._degraded = False
            log.info("usage spool replayed; publishing directly again")
