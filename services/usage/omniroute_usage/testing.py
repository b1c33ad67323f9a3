"""Helpers for tests of the usage service and for cross-service tests that stand in for a producer.

Nothing here runs in production. Everything works against real servers (PostgreSQL, NATS JetStream).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry

from omniroute.v1 import common_pb2, usage_pb2
from omniroute_core import events
from omniroute_usage.budgets import BudgetWarner
from omniroute_usage.consumer import UsageWriter, WriterConfig
from omniroute_usage.metrics import WriterMetrics
from omniroute_usage.store import UsageStore

__all__ = [
    "Lane",
    "consumer_state",
    "count_rows",
    "eventually",
    "make_event",
    "metric_value",
    "new_lane",
    "new_metrics",
    "publish",
    "start_writer",
]


@dataclasses.dataclass(frozen=True)
class Lane:
    """One test's private slice of the usage stream: a provider name, its subject and a durable name."""

    provider: str
    subject: str
    durable: str

    def config(self, **overrides: Any) -> WriterConfig:
        """Writer settings tuned for tests (short waits; a 1 s ack_wait so redelivery is quick), then
        ``overrides``."""
        config = WriterConfig(
            durable=self.durable,
            filter_subject=self.subject,
            batch_wait_s=0.05,
            ack_wait_s=1.0,
            retry_initial_s=0.05,
            retry_max_s=0.2,
        )
        return dataclasses.replace(config, **overrides)


def new_lane() -> Lane:
    """A lane on a fresh random provider name."""
    provider = f"t{uuid.uuid4().hex[:12]}"
    return Lane(provider, f"{events.USAGE_SUBJECT_PREFIX}.{provider}", f"w-{provider}")


def make_event(provider: str, n: int = 0, **fields: object) -> usage_pb2.UsageEvent:
    """A fully populated event; ``fields`` override any top-level field."""
    event = usage_pb2.UsageEvent(
        event_id=f"ev-{provider}-{n}",
        request_id=f"req-{provider}-{n}",
        ts_unix_ms=1_760_000_000_000 + n,
        key_id="key-a",
        provider=provider,
        model="gpt-4o-2024-08-06",
        requested_model="openai/gpt-4o",
        connection_id="conn-1",
        combo="fast",
        status=200,
        latency_ms=1234,
        ttft_ms=210,
        usage=common_pb2.Usage(
            input_tokens=100 + n,
            output_tokens=50,
            cached_input_tokens=20,
            cache_creation_tokens=5,
            reasoning_tokens=7,
            total_tokens=150 + n,
        ),
        client_format=common_pb2.FORMAT_ANTHROPIC_MESSAGES,
        stream=True,
        attempt=2,
        error_type="",
        endpoint="/v1/messages",
    )
    for name, value in fields.items():
        setattr(event, name, value)
    return event


async def publish(js: JetStreamContext, lane: Lane, event: usage_pb2.UsageEvent, msg_id: str | None = None) -> None:
    """Publish as the executor does: Nats-Msg-Id = event id unless overridden."""
    await js.publish(
        lane.subject, event.SerializeToString(), headers={"Nats-Msg-Id": msg_id or event.event_id or uuid.uuid4().hex}
    )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


async def count_rows(dsn: str, provider: str) -> int:
    """How many events of ``provider`` are stored."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM usage_events WHERE provider = $1", provider))
    finally:
        await conn.close()


def new_metrics() -> WriterMetrics:
    return WriterMetrics.create(CollectorRegistry())


def metric_value(counter: object) -> float:
    """The current value of a prometheus Counter (or a Histogram's observation count)."""
    collected = counter.collect()  # type: ignore[attr-defined]
    for sample in collected[0].samples:
        if sample.name.endswith(("_total", "_count")):
            return float(sample.value)
    raise AssertionError("no _total/_count sample")


async def start_writer(
    js: JetStreamContext,
    store: UsageStore,
    lane: Lane,
    metrics: WriterMetrics,
    budgets: BudgetWarner | None = None,
    **overrides: Any,
) -> tuple[UsageWriter, asyncio.Task[None]]:
    """A writer subscribed (so nothing published afterwards is missed) and running in a task; ``overrides``
    change the lane's :class:`WriterConfig`."""
    writer = UsageWriter(js, store, metrics, lane.config(**overrides), budgets=budgets)
    sub = await writer.subscribe()
    return writer, asyncio.create_task(writer.run(sub))


async def consumer_state(js: JetStreamContext, lane: Lane) -> tuple[int, int]:
    """(messages delivered but not acknowledged, messages not yet delivered) of the lane's durable."""
    info = await js.consumer_info(events.USAGE_STREAM, lane.durable)
    return info.num_ack_pending or 0, info.num_pending or 0
