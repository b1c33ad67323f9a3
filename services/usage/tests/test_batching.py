"""The writer's linger: under a steady trickle the messages that arrive while it waits join one batch (one
transaction, one budget check), a full batch is stored without waiting, and stop() does not wait out a linger;
an event repeated within one batch is counted once; budgets are checked only for batches holding a budgeted key."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from decimal import Decimal

import asyncpg
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry

from omniroute.v1 import usage_pb2
from omniroute_core import events
from omniroute_usage.budgets import BudgetStatus, BudgetWarner, set_budget
from omniroute_usage.metrics import WriterMetrics
from omniroute_usage.store import UsageStore
from omniroute_usage.testing import (
    Lane,
    count_rows,
    eventually,
    make_event,
    metric_value,
    new_metrics,
    publish,
    start_writer,
)


async def test_messages_arriving_during_the_linger_are_stored_as_one_batch(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    metrics = new_metrics()
    writer, task = await start_writer(js, store, lane, metrics, batch_linger_s=2.0)
    try:
        await publish(js, lane, make_event(lane.provider, 0))

        async def first() -> bool:
            return await count_rows(db, lane.provider) == 1

        # the first message after a quiet spell is stored at once, well within the linger
        await eventually(first, timeout=1.5)
        for n in range(1, 5):
            await publish(js, lane, make_event(lane.provider, n))

        async def all_five() -> bool:
            return await count_rows(db, lane.provider) == 5

        await eventually(all_five)
        assert metric_value(metrics.batches) == 2
        assert metric_value(metrics.stored) == 5
    finally:
        writer.stop()
        await asyncio.wait_for(task, 10)


async def test_full_batches_do_not_wait_and_stop_ends_a_linger(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    for n in range(5):
        await publish(js, lane, make_event(lane.provider, n))
    metrics = new_metrics()
    writer, task = await start_writer(js, store, lane, metrics, batch_size=2, batch_linger_s=60.0)
    try:

        async def all_five() -> bool:
            return await count_rows(db, lane.provider) == 5

        # 2 + 2 full batches back to back, then the last one; only after that does the writer linger
        await eventually(all_five, timeout=10)
        assert metric_value(metrics.batches) == 3
    finally:
        writer.stop()
        # the minute-long linger is cut short
        await asyncio.wait_for(task, 5)


async def test_an_event_repeated_within_one_batch_is_counted_once(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    # a producer's retry fetched together with the original: stored once, and the GenAI metrics count it once
    event = make_event(lane.provider, 0, model="gpt-4o")
    body = usage_pb2.UsageEventBatch(events=[event, make_event(lane.provider, 1), event]).SerializeToString()
    headers = {"Nats-Msg-Id": "batch-twice", events.USAGE_ENCODING_HEADER: events.USAGE_BATCH_ENCODING}
    await js.publish(lane.subject, body, headers=headers)
    registry = CollectorRegistry()
    metrics = WriterMetrics.create(registry)
    writer, task = await start_writer(js, store, lane, metrics)
    try:

        async def stored() -> bool:
            return metric_value(metrics.batches) == 1

        await eventually(stored)
    finally:
        writer.stop()
        await asyncio.wait_for(task, 10)
    assert await count_rows(db, lane.provider) == 2
    assert (metric_value(metrics.stored), metric_value(metrics.duplicates)) == (2, 1)
    labels = {"gen_ai_provider_name": lane.provider, "gen_ai_request_model": "gpt-4o", "gen_ai_token_type": "input"}
    assert registry.get_sample_value("gen_ai_client_token_usage_count", labels) == 1


class _CountingWarner(BudgetWarner):
    """The real warner, recording the key sets it is asked to check."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, _no_publish, WriterMetrics.create(CollectorRegistry()).budget_warnings)
        self.asked: list[set[str]] = []

    async def check(self, key_ids: Collection[str]) -> list[BudgetStatus]:
        self.asked.append(set(key_ids))
        return await super().check(key_ids)


async def _no_publish(subject: str, payload: bytes) -> None:
    return None


async def test_budgets_are_checked_only_for_batches_with_a_budgeted_key(
    js: JetStreamContext, store: UsageStore, pool: asyncpg.Pool, db: str, lane: Lane
) -> None:
    warner = _CountingWarner(pool)
    metrics = new_metrics()
    writer, task = await start_writer(js, store, lane, metrics, budgets=warner)
    try:
        await publish(js, lane, make_event(lane.provider, 0, key_id="free"))

        async def stored(n: int) -> bool:
            return await count_rows(db, lane.provider) == n

        await eventually(lambda: stored(1))
        assert warner.asked == []  # no key of the batch has a budget: no budget query
        await set_budget(pool, "capped", Decimal(5), "daily")
        await publish(js, lane, make_event(lane.provider, 1, key_id="free"))
        await publish(js, lane, make_event(lane.provider, 2, key_id="capped"))
        await eventually(lambda: stored(3))
        await eventually(lambda: _asked(warner))
    finally:
        writer.stop()
        await asyncio.wait_for(task, 10)
    assert all(keys == {"capped"} for keys in warner.asked)  # only the budgeted key is checked


async def _asked(warner: _CountingWarner) -> bool:
    return bool(warner.asked)
