"""The gRPC servicer: a complete reply is returned before its attempt's bookkeeping, which still always runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from omniroute.v1 import usage_pb2
from omniroute_core import grpcx
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_executor.server import ExecutorServicer
from omniroute_executor.upstream import Upstream

from .conftest import engine_for, snapshot_for
from .test_engine import BODY, request


@dataclass
class Sink:
    seen: list[usage_pb2.UsageEvent] = field(default_factory=list)

    def emit(self, event: usage_pb2.UsageEvent) -> None:
        self.seen.append(event)


@dataclass
class Served:
    servicer: ExecutorServicer
    sink: Sink
    fake: FakeOpenAI


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    fake = FakeOpenAI()
    await fake.start()
    cipher = Cipher(generate_encryption_key())
    snap = snapshot_for(fake.base_url, cipher)
    upstream = Upstream(max_connections=10, connect_timeout_s=2, read_timeout_s=1.0)
    channel = grpcx.insecure_channel("127.0.0.1:9")  # an OpenAI client needs no translation
    sink = Sink()
    engine = engine_for(snap, cipher, upstream, channel, sink)
    try:
        yield Served(ExecutorServicer(engine), sink, fake)
    finally:
        await upstream.close()
        await channel.close()
        await fake.stop()


async def test_a_success_is_returned_first_and_metered_right_after(served: Served) -> None:
    reply = await served.servicer.Execute(request(BODY), cast(Any, None))
    assert reply.status == 200 and (reply.usage.input_tokens, reply.usage.output_tokens) == (11, 7)
    assert served.sink.seen == []  # the usage event is the deferred part: it has not run in the handler's step
    await served.servicer.drain()
    [event] = served.sink.seen
    assert (event.status, event.provider, event.usage.input_tokens, event.attempt) == (200, "openai", 11, 1)


async def test_the_deferred_bookkeeping_runs_without_anyone_waiting_for_it(served: Served) -> None:
    await served.servicer.Execute(request(BODY), cast(Any, None))
    await asyncio.sleep(0)  # one loop step later
    assert len(served.sink.seen) == 1


async def test_a_failure_is_metered_before_its_reply_returns(served: Served) -> None:
    served.fake.script.append(Reply(status=500, raw=b"boom"))
    reply = await served.servicer.Execute(request(BODY), cast(Any, None))
    assert reply.status == 500
    # the last attempt failed: its outcome decides the reply, so it is settled in line, not deferred
    assert [e.status for e in served.sink.seen] == [500]


async def test_drain_waits_for_every_running_bookkeeping(served: Served) -> None:
    replies = await asyncio.gather(*(served.servicer.Execute(request(BODY), cast(Any, None)) for _ in range(5)))
    assert [r.status for r in replies] == [200] * 5
    await served.servicer.drain()
    assert len(served.sink.seen) == 5
    await served.servicer.drain()  # nothing left: returns at once


class Context:
    def __init__(self) -> None:
        self.trailers: tuple[tuple[str, bytes], ...] = ()

    def set_trailing_metadata(self, trailers: tuple[tuple[str, bytes], ...]) -> None:
        self.trailers = trailers


async def test_a_stream_ends_before_its_bookkeeping_which_still_runs(served: Served) -> None:
    body = b'{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    context = Context()
    chunks = [c async for c in served.servicer.ExecuteStream(request(body, stream=True), cast(Any, context))]
    assert chunks[0].status == 200 and b"".join(c.data for c in chunks).endswith(b"data: [DONE]\n\n")
    assert [key for key, _ in context.trailers] == ["omniroute-upstream-timing-bin"]
    assert served.sink.seen == []  # deferred past the stream's end
    await served.servicer.drain()
    [event] = served.sink.seen
    assert (event.status, event.usage.input_tokens) == (200, 11)
