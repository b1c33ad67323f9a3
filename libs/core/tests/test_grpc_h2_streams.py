"""Client-streaming and bidirectional calls through grpc_h2, each end against a stock peer too.

Three pairings: ``H2Channel`` > ``H2Server``, ``H2Channel`` > grpc.aio's server, grpc.aio's channel >
``H2Server``. Both calling styles (a request iterator; ``write()`` / ``done_writing()``), many messages each way,
messages larger than every window, half-closes from either side, the server aborting mid-stream, the client's
cancel and deadline reaching the handler, and the server's flow control holding back a client it does not read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from omniroute_core import grpcx
from omniroute_core.grpc_h2 import H2Channel
from omniroute_devservers.servers import free_port


class Handlers:
    """Bytes-in, bytes-out streaming methods recording what the server saw."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.go = asyncio.Event()
        self.seen = 0

    async def echo(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            self.seen += 1
            yield request[::-1]
        context.set_trailing_metadata((("seen", str(self.seen)),))

    async def collect(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        parts = []
        while (message := await context.read()) is not grpc.aio.EOF:
            parts.append(message)
        return b"%d:" % len(parts) + b"|".join(parts)

    async def abort(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            if request == b"stop":
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "stöpped", (("why", "asked"),))
            yield request

    async def hold(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        try:
            async for _ in requests:
                yield b"ready"
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def first(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        yield await anext(aiter(requests))  # one request answered; the rest never read

    async def stall(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        await self.go.wait()
        return b"%d" % sum([len(r) async for r in requests])


PAIRS = [("h2", "h2"), ("h2", "grpc"), ("grpc", "h2")]  # client > server


class Rig:
    def __init__(self, client: str, server: grpcx.ServerKind) -> None:
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.handlers = h = Handlers()
        self.server = grpcx.Server(self.addr, ["test.S"], server)
        methods: dict[str, Any] = {
            n: grpc.stream_stream_rpc_method_handler(getattr(h, n)) for n in ("echo", "abort", "hold", "first")
        }
        methods |= {n: grpc.stream_unary_rpc_method_handler(getattr(h, n)) for n in ("collect", "stall")}
        self.server.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.S", methods),))
        self.channel: Any = (
            H2Channel(self.addr, max_message=grpcx.MAX_MESSAGE) if client == "h2" else grpcx.insecure_channel(self.addr)
        )

    def bidi(self, name: str) -> Any:
        return self.channel.stream_stream(f"/test.S/{name}")

    def client_stream(self, name: str) -> Any:
        return self.channel.stream_unary(f"/test.S/{name}")


@pytest.fixture(params=PAIRS, ids=[f"{c}>{s}" for c, s in PAIRS])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    rig = Rig(*request.param)
    await rig.server.start()
    try:
        yield rig
    finally:
        await rig.channel.close()
        await rig.server.stop(0)


async def numbered(n: int, size: int = 0) -> AsyncIterator[bytes]:
    for i in range(n):
        yield b"%d." % i + b"x" * size
        if i % 100 == 0:
            await asyncio.sleep(0)


async def test_many_messages_both_ways_from_a_request_iterator(rig: Rig) -> None:
    call = rig.bidi("echo")(numbered(3000), timeout=30)
    replies = [reply async for reply in call]
    assert replies == [(b"%d." % i)[::-1] for i in range(3000)]
    assert await call.code() == grpc.StatusCode.OK
    assert dict(await call.trailing_metadata())["seen"] == "3000"


async def test_write_read_in_turn_then_done_writing(rig: Rig) -> None:
    call = rig.bidi("echo")(timeout=30)
    for i in range(200):
        await call.write(b"ping %d" % i)
        assert await call.read() == (b"ping %d" % i)[::-1]
    await call.done_writing()
    await call.done_writing()  # idempotent
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    with pytest.raises(asyncio.InvalidStateError):
        await call.write(b"late")


async def test_a_client_stream_from_an_iterator_and_from_writes(rig: Rig) -> None:
    assert await rig.client_stream("collect")(numbered(500), timeout=30) == b"500:" + b"|".join(
        b"%d." % i for i in range(500)
    )
    call = rig.client_stream("collect")(timeout=30)
    for word in (b"a", b"b", b"c"):
        await call.write(word)
    await call.done_writing()
    assert await call == b"3:a|b|c"
    assert await rig.client_stream("collect")(iter([b"sync", b"iter"]), timeout=30) == b"2:sync|iter"


async def test_an_immediate_half_close(rig: Rig) -> None:
    call = rig.client_stream("collect")(timeout=30)
    await call.done_writing()
    assert await call == b"0:"
    assert [r async for r in rig.bidi("echo")(numbered(0), timeout=30)] == []


async def test_messages_larger_than_every_window(rig: Rig) -> None:
    payload = bytes(range(256)) * (24 * 1024)  # 6 MB each way, three times: past stream and connection windows
    replies = [reply async for reply in rig.bidi("echo")(iter([payload] * 3), timeout=60)]
    assert replies == [payload[::-1]] * 3


async def test_the_server_aborting_mid_stream(rig: Rig) -> None:
    call = rig.bidi("abort")(timeout=30)
    await call.write(b"one")
    assert await call.read() == b"one"
    await call.write(b"stop")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call.read()
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert exc.value.details() == "stöpped"
    assert dict(exc.value.trailing_metadata())["why"] == "asked"
    assert await call.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises((grpc.aio.AioRpcError, asyncio.InvalidStateError)):
        await call.write(b"after")


async def test_the_server_ending_before_reading_every_request(rig: Rig) -> None:
    call = rig.bidi("first")(numbered(10**9), timeout=30)  # an endless iterator: the writer must stop
    assert [r async for r in call] == [b"0."]
    assert await call.code() == grpc.StatusCode.OK


async def test_the_clients_cancel_reaches_the_handler(rig: Rig) -> None:
    call = rig.bidi("hold")(timeout=30)
    await call.write(b"x")
    assert await call.read() == b"ready"
    call.cancel()
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)
    assert await call.code() == grpc.StatusCode.CANCELLED


async def test_the_deadline_ends_the_call_and_cancels_the_handler(rig: Rig) -> None:
    call = rig.bidi("hold")(iter([b"x"]), timeout=0.5)
    assert await call.read() == b"ready"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call.read()
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)


@pytest.mark.parametrize("client", ["h2", "grpc"])
async def test_a_handler_that_does_not_read_holds_the_client_back(client: str) -> None:
    rig = Rig(client, "h2")
    await rig.server.start()
    call = rig.client_stream("stall")(timeout=30)
    sent = 0

    async def write() -> None:
        nonlocal sent
        for _ in range(20):
            await call.write(b"m" * (1 << 20))
            sent += 1
        await call.done_writing()

    try:
        writer = asyncio.ensure_future(write())
        await asyncio.sleep(1.0)
        assert sent < 10  # our stream window (4 MB) and what may queue unread, not all 20 MB
        rig.handlers.go.set()
        assert await call == b"%d" % (20 << 20)
        await writer
    finally:
        await rig.channel.close()
        await rig.server.stop(0)


# -- the client's own duties (H2Channel) -----------------------------------------------------------------------


async def test_a_raising_request_iterator_cancels_the_call_and_the_handler() -> None:
    rig = Rig("h2", "h2")
    await rig.server.start()

    async def requests() -> AsyncIterator[bytes]:
        yield b"x"
        await asyncio.sleep(0.2)
        raise ValueError("upstream broke")

    try:
        call = rig.bidi("hold")(requests(), timeout=30)
        assert await call.read() == b"ready"
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call.read()
        assert exc.value.code() == grpc.StatusCode.CANCELLED
        assert "upstream broke" in (exc.value.details() or "")
        await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)
    finally:
        await rig.channel.close()
        await rig.server.stop(0)


async def test_leaving_an_async_for_early_cancels_the_call() -> None:
    rig = Rig("h2", "h2")
    await rig.server.start()
    try:
        async for reply in rig.bidi("hold")(iter([b"x"]), timeout=30):  # the server would hold the call 30 s
            assert reply == b"ready"
            break  # the iteration is closed when dropped (as the executor's relay does on an early failure)
        await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)
    finally:
        await rig.channel.close()
        await rig.server.stop(0)


async def test_the_request_iterator_is_closed_when_the_call_ends() -> None:
    rig = Rig("h2", "grpc")
    await rig.server.start()
    closed = asyncio.Event()

    async def requests() -> AsyncIterator[bytes]:
        try:
            yield b"only this one is read"
            await asyncio.sleep(30)  # an upstream that went quiet
            yield b"never"
        finally:
            closed.set()

    try:
        call = rig.bidi("first")(requests(), timeout=30)
        assert [r async for r in call] == [b"only this one is read"]
        await asyncio.wait_for(closed.wait(), 5)
        with pytest.raises(RuntimeError):
            await call.write(b"not with an iterator")
    finally:
        await rig.channel.close()
        await rig.server.stop(0)


async def test_a_request_past_the_message_limit_fails_locally() -> None:
    rig = Rig("h2", "h2")
    await rig.server.start()
    channel = H2Channel(rig.addr, max_message=100)
    try:
        call = channel.stream_stream("/test.S/echo")(timeout=30)
        await call.write(b"small")
        assert await call.read() == b"llams"
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call.write(b"b" * 101)
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await channel.close()
        await rig.channel.close()
        await rig.server.stop(0)
