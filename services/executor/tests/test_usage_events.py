"""Usage events reach JetStream exactly once, through a NATS outage, by way of the disk spool."""

from __future__ import annotations

import asyncio
import os
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
from omniroute_executor.usage_events import UsagePublisher, _EventIds
from omniroute_executor.usage_spool import Spool


def event(i: int) -> usage_pb2.UsageEvent:
    return usage_pb2.UsageEvent(event_id=uuid.uuid4().hex, request_id=f"r{i}", provider="openai", status=200)


def test_event_ids_are_uuid4_hex_and_unique_across_reads() -> None:
    ids = _EventIds()
    made = [ids() for _ in range(600)]  # more than one read of random bytes
    assert len(set(made)) == len(made)
    for made_id in made:
        parsed = uuid.UUID(hex=made_id)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, made_id)


def test_a_forked_child_does_not_reuse_the_parents_random_bytes() -> None:
    ids = _EventIds()
    ids()  # random bytes for 255 more ids are held
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, ids().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 64).decode() != ids()


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


async def stream_event_ids(js: nats.js.JetStreamContext) -> list[str]:
    """Every event id carried by the usage stream (a batch message carries several), in stream order."""
    try:
        state = (await js.stream_info(events.USAGE_STREAM)).state
    except (NotFoundError, nats.errors.Error, TimeoutError):
        return []
    ids: list[str] = []
    for seq in range(state.first_seq, state.last_seq + 1):
        msg = await js.get_msg(events.USAGE_STREAM, seq)
        if (msg.headers or {}).get(events.USAGE_ENCODING_HEADER) == events.USAGE_BATCH_ENCODING:
            ids += [e.event_id for e in usage_pb2.UsageEventBatch.FromString(msg.data or b"").events]
        else:
            ids.append(usage_pb2.UsageEvent.FromString(msg.data or b"").event_id)
    return ids


async def wait_events(js: nats.js.JetStreamContext, expected: set[str], timeout: float) -> set[str]:
    """The distinct event ids in the stream once they include ``expected`` (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            seen = set(await stream_event_ids(js))
        except (nats.errors.Error, TimeoutError):
            seen = set()
        if expected <= seen or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.1)


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
        before = [event(i) for i in range(50)]
        for e in before:
            publisher.emit(e)
        expected = {e.event_id for e in before}
        assert await wait_events(js, expected, timeout=10) == expected
        messages = (await js.stream_info(events.USAGE_STREAM)).state.messages
        assert messages < 50  # batched: fewer messages than events

        private_nats.stop()
        during = [event(i) for i in range(50, 250)]
        for e in during:
            publisher.emit(e)
        await asyncio.sleep(1.5)
        assert spool.pending()

        private_nats.restart()
        expected |= {e.event_id for e in during}
        # every event arrives (a batch caught in NATS's reconnect buffer may also arrive again under a new
        # batch id; the usage writer stores each event id once, see tests/test_usage_outage.py)
        assert await wait_events(js, expected, timeout=20) == expected
        deadline = time.monotonic() + 5
        while spool.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not spool.pending()
    finally:
        await publisher.close()
        await nc.close()


async def test_a_restart_replays_what_the_previous_process_spooled(private_nats: _Server, tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    left_over = Spool(folder)
    spooled = [event(i) for i in range(20)]
    for e in spooled:
        left_over.append(e.SerializeToString())
    left_over.close()
    expected = {e.event_id for e in spooled}
    nc = await events.connect(private_nats.url, "test-executor")
    js = nc.jetstream()
    await events.ensure_usage_stream(js)
    publisher = UsagePublisher(
        js, CollectorRegistry(), queue_size=100, spool=Spool(folder), publish_timeout_s=0.5, replay_interval_s=0.1
    )
    publisher.start()
    try:
        assert await wait_events(js, expected, timeout=10) == expected
    finally:
        await publisher.close()
        await nc.close()
