"""The writer against real JetStream and PostgreSQL: every field stored, exactly once, through crashes,
database outages, poison messages and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, cast

import asyncpg
import pytest
from nats.js import JetStreamContext

from omniroute.v1 import usage_pb2
from omniroute_core import events
from omniroute_usage.consumer import UsageWriter
from omniroute_usage.metrics import WriterMetrics
from omniroute_usage.pricing import PriceBook, event_cost, load_shipped
from omniroute_usage.store import COLUMNS, Row, UsageStore, event_row, open_pool
from omniroute_usage.testing import (
    Lane,
    consumer_state,
    count_rows,
    eventually,
    make_event,
    metric_value,
    new_metrics,
    publish,
    start_writer,
)


async def _stop(running: tuple[UsageWriter, asyncio.Task[None]]) -> None:
    writer, task = running
    writer.stop()
    await asyncio.wait_for(task, 10)


def _tokens(event: usage_pb2.UsageEvent) -> dict[str, int]:
    u = event.usage
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "cache_creation_tokens": u.cache_creation_tokens,
        "reasoning_tokens": u.reasoning_tokens,
    }


async def _settled(js: JetStreamContext, lane: Lane) -> bool:
    return await consumer_state(js, lane) == (0, 0)


async def test_published_events_are_stored_with_every_field(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    metrics = new_metrics()
    running = await start_writer(js, store, lane, metrics)
    events = [make_event(lane.provider, n) for n in range(5)]
    for event in events:
        await publish(js, lane, event)

    async def all_stored() -> bool:
        return await count_rows(db, lane.provider) == 5

    await eventually(all_stored)
    await eventually(lambda: _settled(js, lane))
    await _stop(running)

    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM usage_events ORDER BY event_id")
    finally:
        await conn.close()
    placeholder = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # unused: every event carries its own ts
    book = PriceBook(load_shipped(), {})
    # the lane's random provider serves gpt-4o-2024-08-06: priced as OpenAI's gpt-4o through the model lookup
    gpt4o = book.lookup("openai", "gpt-4o")
    expected = [event_row(e, e.event_id, placeholder, event_cost(gpt4o, **_tokens(e))) for e in events]
    assert all(row[-1] > 0 for row in expected)
    assert [tuple(r) for r in rows] == expected
    assert metric_value(metrics.stored) == 5
    assert metric_value(metrics.duplicates) == 0
    assert metric_value(metrics.batches) >= 1
    assert metric_value(metrics.insert_seconds) == metric_value(metrics.batches)


async def test_an_event_published_twice_is_stored_once(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    metrics = new_metrics()
    running = await start_writer(js, store, lane, metrics)
    event = make_event(lane.provider, 1)
    # different message ids, so JetStream's own duplicate window does not hide the second copy
    await publish(js, lane, event, msg_id="first")
    await publish(js, lane, event, msg_id="second")
    await eventually(lambda: _settled(js, lane))
    # and once more after the first copies were committed, in a later batch
    await publish(js, lane, event, msg_id="third")
    await eventually(lambda: _settled(js, lane))
    await _stop(running)

    assert await count_rows(db, lane.provider) == 1
    assert metric_value(metrics.stored) == 1
    assert metric_value(metrics.duplicates) == 2


async def test_a_poison_message_is_terminated_and_does_not_block_later_ones(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    metrics = new_metrics()
    await js.publish(lane.subject, b"\xff\xff\xff not a protobuf", headers={"Nats-Msg-Id": "poison"})
    for n in range(3):
        await publish(js, lane, make_event(lane.provider, n))
    running = await start_writer(js, store, lane, metrics)

    async def all_stored() -> bool:
        return await count_rows(db, lane.provider) == 3

    await eventually(all_stored)
    # nothing left pending: the poison message was terminated, not left for redelivery
    await eventually(lambda: _settled(js, lane))
    await asyncio.sleep(1.5)  # past ack_wait: a redelivery would show up now
    assert await consumer_state(js, lane) == (0, 0)
    await _stop(running)
    assert metric_value(metrics.invalid) == 1
    assert metric_value(metrics.stored) == 3


async def test_a_row_postgres_rejects_is_terminated_and_the_rest_stored(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    conn = await asyncpg.connect(db)
    try:
        await conn.execute("ALTER TABLE usage_events ADD CONSTRAINT test_reject CHECK (model <> 'reject-me')")
    finally:
        await conn.close()
    metrics = new_metrics()
    await publish(js, lane, make_event(lane.provider, 0))
    await publish(js, lane, make_event(lane.provider, 1, model="reject-me"))
    await publish(js, lane, make_event(lane.provider, 2))
    running = await start_writer(js, store, lane, metrics)

    async def two_stored() -> bool:
        return await count_rows(db, lane.provider) == 2

    await eventually(two_stored)
    await eventually(lambda: _settled(js, lane))
    await _stop(running)
    assert metric_value(metrics.invalid) == 1
    assert metric_value(metrics.stored) == 2


async def test_an_event_without_id_is_keyed_by_its_message_id(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    running = await start_writer(js, store, lane, new_metrics())
    await publish(js, lane, make_event(lane.provider, 0, event_id=""), msg_id="msg-7")
    await eventually(lambda: _settled(js, lane))
    await _stop(running)
    conn = await asyncpg.connect(db)
    try:
        assert await conn.fetchval("SELECT event_id FROM usage_events") == "msg-7"
    finally:
        await conn.close()


class _TcpProxy:
    """A loopback TCP forwarder that can be cut: while cut it refuses connections and has dropped live ones,
    exactly what the writer sees when PostgreSQL goes away."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


@pytest.fixture
async def proxied_store(db: str) -> AsyncIterator[tuple[UsageStore, _TcpProxy]]:
    port = int(db.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = _TcpProxy(port)
    await proxy.start()
    host_part, rest = db.split("@", 1)
    dsn = f"{host_part}@127.0.0.1:{proxy.port}/{rest.split('/', 1)[1]}"
    pool = await open_pool(dsn)
    try:
        yield UsageStore(pool), proxy
    finally:
        with contextlib.suppress(Exception):
            await proxy.cut()
        pool.terminate()


async def test_a_database_outage_keeps_the_batch_until_it_is_stored_once(
    js: JetStreamContext, proxied_store: tuple[UsageStore, _TcpProxy], db: str, lane: Lane
) -> None:
    store, proxy = proxied_store
    metrics = new_metrics()
    running = await start_writer(js, store, lane, metrics)
    await proxy.cut()
    for n in range(20):
        await publish(js, lane, make_event(lane.provider, n))

    async def failing() -> bool:
        return metric_value(metrics.failures) >= 3

    await eventually(failing)
    # held past ack_wait (1 s) without being stored or acknowledged, and not handed out again meanwhile (the
    # writer keeps marking it in progress); whatever it has not fetched yet waits in the stream
    await asyncio.sleep(1.5)
    assert await count_rows(db, lane.provider) == 0
    in_flight, waiting = await consumer_state(js, lane)
    assert in_flight >= 1
    assert in_flight + waiting == 20
    info = await js.consumer_info(events.USAGE_STREAM, lane.durable)
    assert info.num_redelivered == 0

    await proxy.start()  # the database is back, on the same address

    async def all_stored() -> bool:
        return await count_rows(db, lane.provider) == 20

    await eventually(all_stored)
    await eventually(lambda: _settled(js, lane))
    await _stop(running)
    assert metric_value(metrics.stored) == 20
    assert metric_value(metrics.duplicates) == 0


class _CrashingStore(UsageStore):
    """A real store whose first batch 'crashes' the writer: before or after the commit, the writer task hangs
    (as a dead process would: no ack, no nak) until the test cancels it."""

    def __init__(self, pool: asyncpg.Pool, *, commit_first: bool) -> None:
        super().__init__(pool)
        self._commit_first = commit_first
        self.crashed = asyncio.Event()

    async def insert_batch(self, rows: Sequence[Row]) -> dict[str, bool]:
        if self.crashed.is_set():
            return await super().insert_batch(rows)
        if self._commit_first:
            await super().insert_batch(rows)
        self.crashed.set()
        await asyncio.Event().wait()  # never returns: the writer is dead from here on
        raise AssertionError("unreachable")


@pytest.mark.parametrize("commit_first", [False, True], ids=["crash_before_commit", "crash_after_commit"])
async def test_a_batch_interrupted_by_a_crash_is_redelivered_and_stored_once(
    js: JetStreamContext, pool: asyncpg.Pool, db: str, lane: Lane, commit_first: bool
) -> None:
    for n in range(10):
        await publish(js, lane, make_event(lane.provider, n))
    crashing = _CrashingStore(pool, commit_first=commit_first)
    first = await start_writer(js, crashing, lane, new_metrics())
    await asyncio.wait_for(crashing.crashed.wait(), 10)
    first[1].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first[1]
    assert await count_rows(db, lane.provider) == (10 if commit_first else 0)

    # a fresh replica on the same durable gets the batch again once ack_wait (1 s) has passed
    metrics = new_metrics()
    second = await start_writer(js, UsageStore(pool), lane, metrics)
    await eventually(lambda: _settled(js, lane))
    await _stop(second)
    assert await count_rows(db, lane.provider) == 10
    assert metric_value(metrics.stored) == (0 if commit_first else 10)
    assert metric_value(metrics.duplicates) == (10 if commit_first else 0)


class _GatedStore(UsageStore):
    """A real store that holds each insert until the test opens the gate."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def insert_batch(self, rows: Sequence[Row]) -> dict[str, bool]:
        self.entered.set()
        await self.gate.wait()
        return await super().insert_batch(rows)


async def test_stop_finishes_the_batch_in_flight(js: JetStreamContext, pool: asyncpg.Pool, db: str, lane: Lane) -> None:
    for n in range(8):
        await publish(js, lane, make_event(lane.provider, n))
    gated = _GatedStore(pool)
    metrics: WriterMetrics = new_metrics()
    writer, task = await start_writer(js, gated, lane, metrics)
    await asyncio.wait_for(gated.entered.wait(), 10)
    writer.stop()
    await asyncio.sleep(0.2)
    assert not task.done()  # still finishing the batch
    gated.gate.set()
    await asyncio.wait_for(task, 10)
    assert await count_rows(db, lane.provider) == 8
    # the acks were sent before run() returned: nothing is pending redelivery
    await eventually(lambda: _settled(js, lane), timeout=2)


async def test_stop_when_idle_returns_within_the_fetch_wait(
    js: JetStreamContext, store: UsageStore, lane: Lane
) -> None:
    writer, task = await start_writer(js, store, lane, new_metrics(), batch_wait_s=0.2)
    await asyncio.sleep(0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer.stop()
    await asyncio.wait_for(task, 5)
    assert loop.time() - started < 1.0


async def test_stop_during_an_outage_hands_the_batch_back_at_once(
    js: JetStreamContext, proxied_store: tuple[UsageStore, _TcpProxy], pool: asyncpg.Pool, db: str, lane: Lane
) -> None:
    broken, proxy = proxied_store
    await proxy.cut()
    for n in range(5):
        await publish(js, lane, make_event(lane.provider, n))
    metrics = new_metrics()
    # a long ack_wait: only the nak at shutdown can make the batch available again within this test
    writer, task = await start_writer(js, broken, lane, metrics, ack_wait_s=60.0)
    await eventually(lambda: _failed(metrics))
    writer.stop()
    await asyncio.wait_for(task, 5)

    replacement = await start_writer(js, UsageStore(pool), lane, new_metrics(), ack_wait_s=60.0)

    async def all_stored() -> bool:
        return await count_rows(db, lane.provider) == 5

    await eventually(all_stored, timeout=10)
    await _stop(replacement)


async def _failed(metrics: WriterMetrics) -> bool:
    return metric_value(metrics.failures) >= 1


class _Restartable(Protocol):
    def restart(self) -> None: ...


async def test_a_nats_restart_is_ridden_out(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane, nats_server: object
) -> None:
    if isinstance(nats_server, str):
        pytest.skip("NATS is external (NATS_URL); it cannot be restarted from here")
    metrics = new_metrics()
    running = await start_writer(js, store, lane, metrics)
    await publish(js, lane, make_event(lane.provider, 0))
    await eventually(lambda: _settled(js, lane))

    await asyncio.to_thread(cast(_Restartable, nats_server).restart)

    async def published_again() -> bool:
        try:
            await publish(js, lane, make_event(lane.provider, 1))
        except Exception:
            return False
        return True

    await eventually(published_again, timeout=20)

    async def both_stored() -> bool:
        return await count_rows(db, lane.provider) == 2

    await eventually(both_stored, timeout=20)
    await _stop(running)


async def test_a_deleted_consumer_is_recreated_and_redelivery_is_harmless(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    metrics = new_metrics()
    running = await start_writer(js, store, lane, metrics)
    await publish(js, lane, make_event(lane.provider, 0))
    await eventually(lambda: _settled(js, lane))

    await js.delete_consumer(events.USAGE_STREAM, lane.durable)
    await publish(js, lane, make_event(lane.provider, 1))

    async def both_stored() -> bool:
        return await count_rows(db, lane.provider) == 2

    await eventually(both_stored)
    await _stop(running)
    # the recreated consumer starts from the beginning of the lane: the first event came again and was skipped
    assert metric_value(metrics.stored) == 2
    assert metric_value(metrics.duplicates) == 1


async def _publish_batch(js: JetStreamContext, lane: Lane, batch: Sequence[usage_pb2.UsageEvent]) -> None:
    body = usage_pb2.UsageEventBatch(events=list(batch)).SerializeToString()
    headers = {"Nats-Msg-Id": f"batch-{batch[0].event_id}", events.USAGE_ENCODING_HEADER: events.USAGE_BATCH_ENCODING}
    await js.publish(lane.subject, body, headers=headers)


async def test_batch_messages_store_each_event_once(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    metrics = new_metrics()
    running = await start_writer(js, store, lane, metrics)
    first = [make_event(lane.provider, n) for n in range(3)]
    await _publish_batch(js, lane, first)
    await publish(js, lane, make_event(lane.provider, 3))  # single-event messages still work beside batches
    # a re-published batch (a producer retry after the window) overlapping the first: only the new event counts
    await _publish_batch(js, lane, [first[1], make_event(lane.provider, 4)])
    await eventually(lambda: _settled(js, lane))
    await _stop(running)
    assert await count_rows(db, lane.provider) == 5
    assert metric_value(metrics.stored) == 5
    assert metric_value(metrics.duplicates) == 1


async def test_a_rejected_row_inside_a_batch_drops_only_that_row(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    conn = await asyncpg.connect(db)
    try:
        await conn.execute("ALTER TABLE usage_events ADD CONSTRAINT test_reject CHECK (model <> 'reject-me')")
    finally:
        await conn.close()
    metrics = new_metrics()
    batch = [
        make_event(lane.provider, 0),
        make_event(lane.provider, 1, model="reject-me"),
        make_event(lane.provider, 2),
    ]
    await _publish_batch(js, lane, batch)
    running = await start_writer(js, store, lane, metrics)

    async def two_stored() -> bool:
        return await count_rows(db, lane.provider) == 2

    await eventually(two_stored)
    await eventually(lambda: _settled(js, lane))
    await asyncio.sleep(1.5)  # past ack_wait: the batch message was acked, not left for redelivery
    assert await consumer_state(js, lane) == (0, 0)
    await _stop(running)
    assert metric_value(metrics.invalid) == 1
    assert metric_value(metrics.stored) == 2
