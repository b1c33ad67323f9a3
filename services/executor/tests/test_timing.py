"""Upstream timing: what the executor reports as time spent waiting on providers (the edge's overhead input).

Fake delays give lower bounds (the provider's time is at least its scripted delay); nothing here judges speed.
"""

from __future__ import annotations

from omniroute.v1 import executor_pb2
from omniroute_devservers.fake_openai import Reply
from omniroute_executor.timing import UpstreamClock

from .conftest import Rig
from .test_engine import BODY, request


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_waits_are_summed_across_attempts_and_the_first_byte_counts_earlier_attempts_whole() -> None:
    now = FakeClock()
    clock = UpstreamClock(now)
    sink = executor_pb2.UpstreamTiming()
    clock.sink = sink
    clock.start()
    now.now += 0.5  # a failed attempt
    clock.stop()
    now.now += 2.0  # a retry delay is not the provider's time
    clock.start()
    now.now += 0.25
    assert clock.first_byte() == 750_000
    now.now += 1.0
    assert clock.first_byte() == 750_000  # only the first call counts
    clock.stop()
    clock.stop()  # idempotent
    assert clock.timing() == executor_pb2.UpstreamTiming(total_us=1_750_000, first_byte_us=750_000)
    assert sink == clock.timing()


def test_without_relayed_bytes_the_first_byte_is_the_total_and_a_running_wait_counts_up_to_now() -> None:
    now = FakeClock()
    clock = UpstreamClock(now)
    assert clock.timing() == executor_pb2.UpstreamTiming()
    clock.start()
    now.now += 0.3
    assert clock.timing() == executor_pb2.UpstreamTiming(total_us=300_000, first_byte_us=300_000)


async def test_a_reply_carries_at_least_the_providers_delay(rig: Rig) -> None:
    rig.fake.script.append(Reply(json=rig.fake.completion("gpt-4o"), delay_s=0.2))
    reply = await rig.engine.execute(request(BODY))
    assert reply.status == 200
    assert reply.upstream.total_us >= 200_000
    assert reply.upstream.first_byte_us == reply.upstream.total_us


async def test_a_stream_reports_its_first_byte_on_the_first_chunk_and_its_total_in_the_sink(rig: Rig) -> None:
    events = rig.fake.chunks("gpt-4o", include_usage=False)
    rig.fake.script.append(Reply(events=events, delay_s=0.1, chunk_delay_s=0.05))
    timing = executor_pb2.UpstreamTiming()
    req = request(b'{"model":"openai/gpt-4o","stream":true}', stream=True)
    chunks = [c async for c in rig.engine.execute_stream(req, timing)]
    first_byte = chunks[0].upstream.first_byte_us
    assert 100_000 <= first_byte == timing.first_byte_us
    assert not any(c.HasField("upstream") for c in chunks[1:])
    # the events after the first come at least chunk_delay_s apart
    assert timing.total_us >= first_byte + (len(events) - 1) * 50_000


async def test_an_error_before_any_provider_call_has_no_upstream_time(rig: Rig) -> None:
    reply = await rig.engine.execute(request(b'{"model": "nope/x", "messages": []}', model="nope/x"))
    assert reply.status == 404
    timing = executor_pb2.UpstreamTiming()
    req = request(b'{"model": "nope/x", "stream": true}', model="nope/x", stream=True)
    chunks = [c async for c in rig.engine.execute_stream(req, timing)]
    assert chunks[0].status == 404
    assert timing == executor_pb2.UpstreamTiming()
