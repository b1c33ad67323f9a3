"""Usage events reach JetStream exactly once, through a NATS outage, by way of the disk spool."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry

from omniroute.v1 import usage_pb2
from omniroute_core import events
from omniroute_devservers.pytest_plugin import _Server
from omniroute_executor.usage_events import UsagePublisher
from omniroute_executor.usage_spool import Spool


def event(i: int) -> usage_pb2.UsageEvent:
    return usage_pb2.UsageEvent(event_id=uuid.uuid4().hex, request_id=f"r{i}", provider="openai", status=200)


def test_spool_round_trips_records_and_skips_a_torn_tail(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert not spool.pending()
    records = [event(i).SerializeToString() for i in range(3)]
    for record in records:
        spool.append(record)
    assert spool.pending()
    [path] = spool.take()
    with path.open("ab") as fh:
        fh.write((999).to_bytes(4, "big") + b"partial")  # a crash in the middle of a write
    assert list(Spool.records(path)) == records
    spool.append(records[0])
    assert len(spool.take()) == 2  # the new file and the one not yet deleted


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[_Server]:
    server = _Server("nats", tmp_path)
    try:
        yield server
    finally:
        server.stop()


async def stream_count(js: nats.js.JetStreamContext) -> int:
    try:
        return int((await js.stream_info(events.USAGE_STREAM)).state.messages)
    except (NotFoundError, nats.errors.Error, TimeoutError):
        return -1


async def wait_count(js: nats.js.JetStreamContext, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = await stream_count(js)
    while count != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        count = await stream_count(js)
    return count


async def test_events_published_during_an_outage_arrive_exactly_once(private_nats: _Server, tmp_path: Path) -> None:
    nc = await events.connect(private_nats.url, "test-executor")
    js = nc.jetstream()
    await events.ensure_usage_stream(js)
    spool = Spool(tmp_path / "spool")
    publisher = UsagePublisher(
        js, CollectorRegistry(), queue_size=10_000, spool=spool, publish_timeout_s=0.5, replay_interval_s=0.1
    )
    publisher.start()
    try:
        for i in range(50):
            publisher.emit(event(i))
        assert await wait_count(js, 50, timeout=10) == 50

        private_nats.stop()
        for i in range(50, 250):
            publisher.emit(event(i))
        await asyncio.sleep(1.5)
        assert spool.pending()

        private_nats.restart()
        assert await wait_count(js, 250, timeout=20) == 250
        deadline = time.monotonic() + 5
        while spool.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not spool.pending()
        await asyncio.sleep(0.5)
        assert await stream_count(js) == 250  # nothing arrived twice
    finally:
        await publisher.close()
        await nc.close()


async def test_a_restart_replays_what_the_previous_process_spooled(private_nats: _Server, tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    left_over = Spool(folder)
    for i in range(20):
        left_over.append(event(i).SerializeToString())
    left_over.close()
    nc = await events.connect(private_nats.url, "test-executor")
    js = nc.jetstream()
    await events.ensure_usage_stream(js)
    publisher = UsagePublisher(
        js, CollectorRegistry(), queue_size=100, spool=Spool(folder), publish_timeout_s=0.5, replay_interval_s=0.1
    )
    publisher.start()
    try:
        assert await wait_count(js, 20, timeout=10) == 20
    finally:
        await publisher.close()
        await nc.close()
