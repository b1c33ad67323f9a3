"""The pure-asyncio gRPC client against both servers grpcx.Server offers: stock grpc.aio and the in-loop H2Server.

Every behaviour the edge relies on: replies and streams, statuses and trailers, flow control with messages
larger than any window, deadlines and cancellation reaching the server's handler, the server going away and
coming back, many calls at once, request metadata and the standard health service.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import hpack
import pytest
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omniroute_core import grpcx
from omniroute_core.grpc_h2 import H2Channel
from omniroute_devservers.servers import free_port


class Handlers:
    """Bytes-in, bytes-out methods of a test service, recording what the server saw."""

    def __init__(self) -> None:
        self.metadata: list[tuple[str, str]] = []
        self.cancelled = asyncio.Event()

    async def echo(self, request: bytes, context: Any) -> bytes:
        self.metadata = [(k, v) for k, v in context.invocation_metadata() if not k.startswith("grpc-")]
        return request[::-1]

    async def fail(self, request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nöt ready: 100% sure")
        raise AssertionError("unreachable")

    async def slow(self, request: bytes, context: Any) -> bytes:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return request

    async def count(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        # A call cancelled while the generator waits in its sleep raises CancelledError in it; cancelled while it
        # is suspended at a yield, the server closes it (GeneratorExit) instead. Either way it ended early.
        finished = False
        try:
            for i in range(int(request)):
                yield b"%d" % i
                if request.startswith(b"9"):
                    await asyncio.sleep(0.01)
            finished = True
        finally:
            if not finished:
                self.cancelled.set()
        context.set_trailing_metadata((("timing-bin", b"\x00\x01\xff"), ("note", "done")))

    async def big(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        for _ in range(3):
            yield request + request


SERVER_KINDS: list[grpcx.ServerKind] = ["grpc", "h2"]


def start_server(handlers: Handlers, port: int, kind: grpcx.ServerKind = "grpc") -> grpcx.Server:
    server = grpcx.Server(f"127.0.0.1:{port}", ["test.T"], kind)
    unary: dict[str, Any] = {
        n: grpc.unary_unary_rpc_method_handler(getattr(handlers, n)) for n in ("echo", "fail", "slow")
    }
    stream: dict[str, Any] = {n: grpc.unary_stream_rpc_method_handler(getattr(handlers, n)) for n in ("count", "big")}
    server.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.T", unary | stream),))
    return server


class Rig:
    def __init__(self, kind: grpcx.ServerKind) -> None:
        self.port = free_port()
        self.handlers = Handlers()
        self.server = start_server(self.handlers, self.port, kind)
        self.channel = H2Channel(f"127.0.0.1:{self.port}", max_message=grpcx.MAX_MESSAGE)

    def unary(self, name: str) -> Any:
        return self.channel.unary_unary(f"/test.T/{name}")

    def stream(self, name: str) -> Any:
        return self.channel.unary_stream(f"/test.T/{name}")


@pytest.fixture(params=SERVER_KINDS)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    rig = Rig(request.param)
    await rig.server.start()
    try:
        yield rig
    finally:
        await rig.channel.close()
        await rig.server.stop(0)


async def read_all(call: Any) -> list[bytes]:
    out = []
    while (message := await call.read()) is not grpc.aio.EOF:
        out.append(message)
    return out


async def test_a_unary_call_and_its_metadata(rig: Rig) -> None:
    reply = await rig.unary("echo")(b"hello", timeout=5, metadata=(("x-request-id", "rid-1"),))
    assert reply == b"olleh"
    assert ("x-request-id", "rid-1") in rig.handlers.metadata


async def test_an_error_status_keeps_code_and_details(rig: Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("fail")(b"", timeout=5)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert exc.value.details() == "nöt ready: 100% sure"


async def test_an_unknown_method_is_unimplemented(rig: Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("nope")(b"", timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_stream_reads_every_message_then_eof_and_its_trailers(rig: Rig) -> None:
    call = rig.stream("count")(b"500", timeout=5)
    assert await read_all(call) == [b"%d" % i for i in range(500)]
    assert await call.read() is grpc.aio.EOF
    trailers = dict(await call.trailing_metadata())
    assert trailers["timing-bin"] == b"\x00\x01\xff"
    assert trailers["note"] == "done"


async def test_read_ready_returns_what_has_arrived_without_waiting(rig: Rig) -> None:
    call = rig.stream("count")(b"40", timeout=5)
    assert call.read_ready() == []  # not started
    assert await call.read() == b"0"
    await call.trailing_metadata()  # the whole stream has arrived
    assert call.read_ready() == [b"%d" % i for i in range(1, 40)]
    assert call.read_ready() == []
    assert await call.read() is grpc.aio.EOF


async def test_messages_larger_than_every_window_cross_both_ways(rig: Rig) -> None:
    # 6 MB up, 12 MB messages down: past the server's stream and connection windows and ours (4 MB per stream)
    payload = bytes(range(256)) * (6 * 4096)
    assert await rig.unary("echo")(payload, timeout=30) == payload[::-1]
    assert await read_all(rig.stream("big")(payload, timeout=30)) == [payload + payload] * 3


async def test_many_calls_share_the_connection(rig: Rig) -> None:
    replies = await asyncio.gather(*(rig.unary("echo")(b"%d" % i, timeout=10) for i in range(300)))
    assert replies == [(b"%d" % i)[::-1] for i in range(300)]
    streams = await asyncio.gather(*(read_all(rig.stream("count")(b"20", timeout=10)) for _ in range(50)))
    assert all(s == [b"%d" % i for i in range(20)] for s in streams)


async def test_a_deadline_fails_the_call_and_cancels_the_handler(rig: Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("slow")(b"x", timeout=0.3)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 20)
    assert await rig.unary("echo")(b"ok", timeout=5) == b"ko"  # the connection is still good


async def test_cancel_ends_a_waiting_reply_and_cancels_the_handler(rig: Rig) -> None:
    call = rig.unary("slow")(b"x", timeout=30)
    waiting = asyncio.ensure_future(_await(call))
    await asyncio.sleep(0.2)
    assert call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 20)


async def _await(call: Any) -> Any:
    return await call


async def test_cancel_mid_stream_ends_reads_and_cancels_the_handler(rig: Rig) -> None:
    call = rig.stream("count")(b"900", timeout=30)
    assert await call.read() == b"0"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call.read()
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 20)


async def test_a_cancelled_caller_cancels_its_call(rig: Rig) -> None:
    task = asyncio.ensure_future(_await(rig.unary("slow")(b"x", timeout=30)))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 20)


@pytest.mark.parametrize("kind", SERVER_KINDS)
async def test_no_server_is_unavailable_and_a_started_server_is_used_at_once(kind: grpcx.ServerKind) -> None:
    port = free_port()
    handlers = Handlers()
    channel = H2Channel(f"127.0.0.1:{port}", max_message=1024)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await channel.unary_unary("/test.T/echo")(b"x", timeout=5)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        server = start_server(handlers, port, kind)
        await server.start()
        try:
            assert await channel.unary_unary("/test.T/echo")(b"ab", timeout=5) == b"ba"
        finally:
            await server.stop(0)
        # the server is gone: in-flight nothing, the next call fails fast, and a new server is found again
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await channel.unary_unary("/test.T/echo")(b"x", timeout=5)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        server = start_server(handlers, port, kind)
        await server.start()
        try:
            assert await channel.unary_unary("/test.T/echo")(b"cd", timeout=5) == b"dc"
        finally:
            await server.stop(0)
    finally:
        await channel.close()


async def test_a_graceful_stop_lets_a_running_stream_finish(rig: Rig) -> None:
    call = rig.stream("count")(b"90", timeout=30)  # 90 messages 10 ms apart
    assert await call.read() == b"0"
    stopping = asyncio.ensure_future(rig.server.stop(grace=10))
    rest = await read_all(call)
    assert rest == [b"%d" % i for i in range(1, 90)]
    await stopping
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("echo")(b"x", timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_message_over_the_limit_is_refused(rig: Rig) -> None:
    small = H2Channel(f"127.0.0.1:{rig.port}", max_message=100)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await small.unary_unary("/test.T/echo")(b"x" * 200, timeout=5)
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await read_all(small.unary_stream("/test.T/big")(b"y" * 99, timeout=5))  # replies of 198 bytes
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await small.unary_unary("/test.T/echo")(b"fine", timeout=5) == b"enif"
    finally:
        await small.close()


async def test_generated_stubs_and_the_health_service_work_through_it(rig: Rig) -> None:
    stub = health_pb2_grpc.HealthStub(rig.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service="test.T"), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def _uvloop_client(port: int) -> None:
    channel = H2Channel(f"127.0.0.1:{port}", max_message=grpcx.MAX_MESSAGE)
    try:
        assert await channel.unary_unary("/test.T/echo")(b"uv", timeout=5) == b"vu"
        assert await read_all(channel.unary_stream("/test.T/count")(b"50", timeout=5)) == [b"%d" % i for i in range(50)]
        call = channel.unary_stream("/test.T/count")(b"900", timeout=30)
        assert await call.read() == b"0"
        call.cancel()
        try:
            await call.read()
            raise AssertionError("a cancelled call read on")
        except asyncio.CancelledError:
            pass
    finally:
        await channel.close()


def uvloop_main(port: int) -> None:
    uvloop.run(_uvloop_client(port))


async def test_the_client_under_uvloop(rig: Rig) -> None:
    """The services run uvloop, whose transports differ from asyncio's (a separate process: one loop kind each)."""
    here = str(Path(__file__).parent)
    code = f"import sys; sys.path.insert(0, {here!r}); import test_grpc_h2 as t; t.uvloop_main({rig.port})"
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 20)


def test_the_public_surface_is_pinned() -> None:
    import omniroute_core.grpc_h2 as package

    assert sorted(package.__all__) == [
        "H2Channel",
        "H2Server",
        "ServicerContext",
        "StreamStreamCall",
        "StreamUnaryCall",
        "UnaryStreamCall",
        "UnaryUnaryCall",
    ]


def test_the_header_encoder_indexes_repeated_fields_and_a_stock_decoder_agrees() -> None:
    from omniroute_core.grpc_h2._hpack import HeaderEncoder, literal_field

    encoder, decoder = HeaderEncoder(table_size=200), hpack.Decoder()
    fields = [(b":path", b"/a.B/C"), (b":authority", b"host:1"), (b"te", b"trailers"), (b"content-type", b"x" * 60)]
    blocks = []
    for i in range(4):
        block = b"".join(encoder.cached(n, v) for n, v in fields) + literal_field(b"x-request-id", b"%d" % i)
        blocks.append(block)
        assert decoder.decode(block, raw=True) == [*fields, (b"x-request-id", b"%d" % i)]
    # the first three fit the 200-byte table and are one byte each afterwards; the fourth never fits
    assert len(blocks[1]) == 3 + len(literal_field(*fields[3])) + len(literal_field(b"x-request-id", b"1"))
    update = encoder.shrink(50)  # the peer shrank its table below what we used: emptied, then new maximum
    decoder.max_allowed_table_size = 50
    block = update + b"".join(encoder.cached(n, v) for n, v in fields[:2])
    assert decoder.decode(block, raw=True) == fields[:2]
    assert decoder.decode(b"".join(encoder.cached(n, v) for n, v in fields[:2]), raw=True) == fields[:2]
