"""Publishing usage events to JetStream without slowing the request that produced them.

``emit`` only enqueues; a few worker tasks publish with ``Nats-Msg-Id`` set to the event id (so a retried
publish is stored once) and wait for JetStream's acknowledgement. While NATS is unreachable, workers retry with
backoff and the queue absorbs the gap up to its bound; overflow is counted and logged, never blocking requests.
(Spooling to disk across a long outage is the usage issue's work.)
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

__all__ = ["UsagePublisher", "usage_subject"]

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^a-z0-9_-]")


def usage_subject(provider: str) -> str:
    return f"{USAGE_SUBJECT_PREFIX}.{_UNSAFE.sub('_', provider.lower()) or 'unknown'}"


class UsagePublisher:
    def __init__(self, js: JetStreamContext, registry: CollectorRegistry, *, queue_size: int, workers: int = 4) -> None:
        self._js = js
        self._queue: asyncio.Queue[usage_pb2.UsageEvent] = asyncio.Queue(queue_size)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._published = Counter(
            "omniroute_usage_events_published", "Usage events acknowledged by JetStream", registry=registry
        )
        self._dropped = Counter(
            "omniroute_usage_events_dropped", "Usage events dropped because the queue was full", registry=registry
        )

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"usage-publisher-{i}") for i in range(self._workers)]

    def emit(self, event: usage_pb2.UsageEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._dropped.inc()
            log.error("usage queue full; event dropped", extra={"event_id": event.event_id})

    async def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued (up to ``timeout`` seconds), then stop the workers."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._publish(event)
            finally:
                self._queue.task_done()

    async def _publish(self, event: usage_pb2.UsageEvent) -> None:
        data = event.SerializeToString()
        subject = usage_subject(event.provider)
        delay = 0.1
        while True:
            try:
                await self._js.publish(subject, data, headers={"Nats-Msg-Id": event.event_id}, timeout=2.0)
                self._published.inc()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("usage publish failed; retrying", extra={"error": str(exc), "event_id": event.event_id})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
