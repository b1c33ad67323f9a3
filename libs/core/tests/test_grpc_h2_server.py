"""The in-loop gRPC server (grpc_h2.H2Server through grpcx.Server) against stock clients and raw HTTP/2.

Stock grpc.aio channels and generated stubs are what other services, health probes and tools use; the raw
HTTP/2 tests pin the connection-level duties a stock client does not show (SETTINGS and PING acknowledged, a
small peer window respected, non-gRPC requests refused, GOAWAY on stop).
"""

from __future__ import annotations

import asyncio
import gc
import struct
from collections.abc import AsyncIterator
from typing import Any

import grpc
import hpack
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omniroute_core import grpcx
from omniroute_core.grpc_h2 import H2Channel
from omniroute_core.grpc_h2._server_conn import MAX_HEADER_LIST
from omniroute_core.logging import REQUEST_ID
from omniroute_devservers.servers import free_port


class Handlers:
    """Bytes-in, bytes-out methods recording what the server side saw."""

    def __init__(self) -> None:
        self.metadata: dict[str, Any] = {}
        self.one: dict[str, str | None] = {}
        self.request_id = ""
        self.cancelled = asyncio.Event()
        self.released = asyncio.Event()

    async def echo(self, request: bytes, context: Any) -> bytes:
        self.metadata = dict(context.invocation_metadata())
        self.one = {k: context.metadata_value(k) for k in ("note", "te", ":path", "absent")}
        self.request_id = REQUEST_ID.get()
        return request[::-1]

    async def abort(self, request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nöt ready: 100% sure", (("why-bin", b"\x00\xff"),))
        raise AssertionError("unreachable")

    async def crash(self, request: bytes, context: Any) -> bytes:
        if request == b"coded":
            context.set_code(grpc.StatusCode.UNIMPLEMENTED)
            context.set_details("Method not implemented!")
        raise ValueError("boom")

    async def slow(self, request: bytes, context: Any) -> bytes:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return request

    async def count(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        try:
            for i in range(int(request)):
                yield b"%d" % i
                if request.startswith(b"9"):
                    await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            self.released.set()
        trailers = [("timing-bin", b"\x00\x01\xff"), ("note", "done")]
        if request == b"3":
            trailers.append(("big", "t" * 30_000))
        context.set_trailing_metadata(trailers)

    async def big(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        for _ in range(3):
            yield request + request


class Rig:
    def __init__(self) -> None:
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.handlers = Handlers()
        self.server = grpcx.Server(self.addr, ["test.T"], "h2")
        h = self.handlers
        unary = ("echo", "abort", "crash", "slow")
        methods: dict[str, Any] = {n: grpc.unary_unary_rpc_method_handler(getattr(h, n)) for n in unary}
        methods |= {n: grpc.unary_stream_rpc_method_handler(getattr(h, n)) for n in ("count", "big")}
        self.server.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.T", methods),))
        self.channel = grpcx.insecure_channel(self.addr)

    def unary(self, name: str) -> Any:
        return self.channel.unary_unary(f"/test.T/{name}")

    def stream(self, name: str) -> Any:
        return self.channel.unary_stream(f"/test.T/{name}")

    def method(self, path: str) -> Any:
        return self.channel.unary_unary(path)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    await rig.server.start()
    try:
        yield rig
    finally:
        await rig.channel.close()
        await rig.server.stop(0)


async def read_all(call: Any) -> list[bytes]:
    return [message async for message in call]


async def test_a_unary_call_its_metadata_and_the_request_id(rig: Rig) -> None:
    metadata = (("x-request-id", "rid-7"), ("tag-bin", b"\x00\x01"), ("note", "n"))
    assert await rig.unary("echo")(b"hello", timeout=5, metadata=metadata) == b"olleh"
    assert rig.handlers.metadata["x-request-id"] == "rid-7"
    assert rig.handlers.metadata["tag-bin"] == b"\x00\x01"
    assert rig.handlers.metadata["note"] == "n"
    assert "grpc-timeout" not in rig.handlers.metadata
    assert rig.handlers.request_id == "rid-7"
    # one entry without the whole tuple (the request-id hook's way): transport headers are not metadata
    assert rig.handlers.one == {"note": "n", "te": None, ":path": None, "absent": None}


async def test_a_stream_with_its_trailing_metadata(rig: Rig) -> None:
    call = rig.stream("count")(b"500", timeout=5)
    assert await read_all(call) == [b"%d" % i for i in range(500)]
    trailers = dict(await call.trailing_metadata())
    assert trailers["timing-bin"] == b"\x00\x01\xff"  # base64 on the wire, bytes again at the client
    assert trailers["note"] == "done"
    assert await call.code() == grpc.StatusCode.OK


async def test_calls_leave_nothing_for_the_cyclic_garbage_collector(rig: Rig) -> None:
    # a call's objects go when their last reference does: a stream <-> context cycle per call made the executor
    # run a generation-0 collection every few dozen requests (hundreds of microseconds each, on the hot path)
    echo, count = rig.unary("echo"), rig.stream("count")
    await echo(b"warm", timeout=5)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage, to be named
    try:
        for _ in range(20):
            assert await echo(b"hello", timeout=5) == b"olleh"
            assert await read_all(count(b"2", timeout=5)) == [b"0", b"1"]
        gc.collect()
        left = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not left & {"ServerStream", "RequestStream", "ServicerContext", "Task", "TimerHandle"}, left


async def test_large_trailers_cross_in_continuation_frames() -> None:
    rig = Rig()
    await rig.server.start()
    channel = H2Channel(rig.addr, max_message=1 << 20)  # a stock client refuses trailers over 8 KB by default
    try:
        call = channel.unary_stream("/test.T/count")(b"3", timeout=5)
        assert [m async for m in _reads(call)] == [b"0", b"1", b"2"]
        assert dict(await call.trailing_metadata())["big"] == "t" * 30_000
    finally:
        await channel.close()
        await rig.channel.close()
        await rig.server.stop(0)


async def _reads(call: Any) -> AsyncIterator[bytes]:
    while (message := await call.read()) is not grpc.aio.EOF:
        yield message


async def test_large_request_metadata_arrives_in_continuation_frames(rig: Rig) -> None:
    value = "m" * 40_000  # past the 16 KB frame: the stock client splits the block
    assert await rig.unary("echo")(b"x", timeout=5, metadata=(("huge", value),)) == b"x"
    assert rig.handlers.metadata["huge"] == value


async def test_messages_larger_than_every_window(rig: Rig) -> None:
    payload = bytes(range(256)) * (6 * 4096)  # 6 MB up; 12 MB messages down, past every window
    assert await rig.unary("echo")(payload, timeout=30) == payload[::-1]
    assert await read_all(rig.stream("big")(payload, timeout=30)) == [payload + payload] * 3


async def test_many_concurrent_calls(rig: Rig) -> None:
    replies = await asyncio.gather(*(rig.unary("echo")(b"%d" % i, timeout=20) for i in range(300)))
    assert replies == [(b"%d" % i)[::-1] for i in range(300)]
    streams = await asyncio.gather(*(read_all(rig.stream("count")(b"20", timeout=20)) for _ in range(50)))
    assert all(s == [b"%d" % i for i in range(20)] for s in streams)


async def test_the_deadline_ends_the_call_and_cancels_the_handler(rig: Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("slow")(b"x", timeout=0.3)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)
    assert await rig.unary("echo")(b"ok", timeout=5) == b"ko"


async def test_the_server_enforces_the_deadline_itself() -> None:
    rig = Rig()
    await rig.server.start()
    channel = H2Channel(rig.addr, max_message=1024)
    try:
        # the server's own timer (the client's races it): either way the handler is cancelled
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await channel.unary_unary("/test.T/slow")(b"x", timeout=0.2)
        assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)
    finally:
        await channel.close()
        await rig.channel.close()
        await rig.server.stop(0)


async def test_a_cancelled_unary_call_cancels_the_handler(rig: Rig) -> None:
    call = rig.unary("slow")(b"x", timeout=30)
    await asyncio.sleep(0.3)
    call.cancel()
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)


async def test_a_cancelled_stream_cancels_and_closes_the_handler(rig: Rig) -> None:
    call = rig.stream("count")(b"900", timeout=30)
    assert await call.read() == b"0"
    call.cancel()
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)
    await asyncio.wait_for(rig.handlers.released.wait(), 10)


async def test_a_closed_channel_cancels_the_handler(rig: Rig) -> None:
    channel = grpcx.insecure_channel(rig.addr)
    slow: Any = channel.unary_unary("/test.T/slow")
    call = slow(b"x", timeout=30)
    await asyncio.sleep(0.3)
    await channel.close()
    await asyncio.wait_for(rig.handlers.cancelled.wait(), 10)
    del call


async def test_an_unknown_method_is_unimplemented(rig: Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.method("/test.T/nope")(b"", timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.method("/other.S/x")(b"", timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_abort_sends_its_code_details_and_trailers(rig: Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("abort")(b"", timeout=5)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert exc.value.details() == "nöt ready: 100% sure"
    assert dict(exc.value.trailing_metadata())["why-bin"] == b"\x00\xff"


async def test_a_handler_exception_is_unknown_unless_the_handler_set_a_code(rig: Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("crash")(b"", timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNKNOWN  # as grpc.aio answers
    assert "boom" in (exc.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("crash")(b"coded", timeout=5)  # what a generated servicer's unimplemented method does
    assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert exc.value.details() == "Method not implemented!"


async def test_the_health_service_through_the_generated_stub(rig: Rig) -> None:
    stub = health_pb2_grpc.HealthStub(rig.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service="test.T"), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    watch = stub.Watch(health_pb2.HealthCheckRequest(service="test.T"), timeout=10)  # a coroutine writing replies
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    await rig.server.health.set("test.T", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
    watch.cancel()
    assert await grpcx.wait_healthy(rig.addr, timeout=5) is True


async def test_a_graceful_stop_finishes_a_running_stream_and_refuses_new_calls(rig: Rig) -> None:
    call = rig.stream("count")(b"90", timeout=30)  # 90 messages 10 ms apart
    assert await call.read() == b"0"
    stopping = asyncio.ensure_future(rig.server.stop(grace=10))
    assert [m async for m in _reads(call)] == [b"%d" % i for i in range(1, 90)]
    await stopping
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await rig.unary("echo")(b"x", timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_stop_past_its_grace_cancels_what_still_runs(rig: Rig) -> None:
    call = rig.unary("slow")(b"x", timeout=30)
    await asyncio.sleep(0.3)
    await rig.server.stop(grace=0.2)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert rig.handlers.cancelled.is_set()


async def test_messages_over_the_limits_are_resource_exhausted() -> None:
    port = free_port()
    handlers = Handlers()
    server = grpcx.Server(f"127.0.0.1:{port}", ["test.T"], "h2")
    server.server.max_receive = server.server.max_send = 100
    methods: dict[str, Any] = {
        "echo": grpc.unary_unary_rpc_method_handler(handlers.echo),
        "big": grpc.unary_stream_rpc_method_handler(handlers.big),
    }
    server.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.T", methods),))
    await server.start()
    channel = grpcx.insecure_channel(f"127.0.0.1:{port}")
    echo: Any = channel.unary_unary("/test.T/echo")
    big: Any = channel.unary_stream("/test.T/big")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await echo(b"x" * 200, timeout=5)
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await read_all(big(b"y" * 99, timeout=5))  # replies of 198 bytes
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await echo(b"fine", timeout=5) == b"enif"
    finally:
        await channel.close()
        await server.stop(0)


# -- raw HTTP/2 ------------------------------------------------------------------------------------------------


class Raw:
    """A bare HTTP/2 client: frames in, frames out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    def send(self, kind: int, flags: int, stream: int, payload: bytes = b"") -> None:
        self.writer.write(len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload)

    async def frame(self) -> tuple[int, int, int, bytes]:
        head = await asyncio.wait_for(self.reader.readexactly(9), 5)
        payload = await self.reader.readexactly(int.from_bytes(head[:3], "big"))
        return head[3], head[4], int.from_bytes(head[5:9], "big"), payload

    async def until(self, kind: int, flags: int | None = None) -> bytes:
        while True:
            k, f, _, payload = await self.frame()
            if k == kind and (flags is None or f & flags == flags):
                return payload

    def request(self, stream: int, path: bytes, message: bytes, content_type: bytes = b"application/grpc") -> None:
        fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path), (b":authority", b"t"),
                  (b"content-type", content_type), (b"te", b"trailers")]  # fmt: skip
        self.send(1, 0x4, stream, self.encoder.encode(fields))
        self.send(0, 0x1, stream, struct.pack(">BI", 0, len(message)) + message)


async def raw(rig: Rig, settings: bytes = b"") -> Raw:
    conn = Raw(*await asyncio.open_connection("127.0.0.1", rig.port))
    conn.writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    conn.send(4, 0, 0, settings)
    return conn


async def test_settings_and_ping_are_acknowledged(rig: Rig) -> None:
    conn = await raw(rig)
    server_settings = await conn.until(4)
    assert dict(struct.iter_unpack(">HI", server_settings))[0x4] >= 65_535
    await conn.until(4, flags=0x1)  # our SETTINGS acknowledged
    conn.send(6, 0, 0, b"12345678")
    assert await conn.until(6, flags=0x1) == b"12345678"
    await conn.close()


async def test_a_reply_waits_for_a_small_peer_window(rig: Rig) -> None:
    conn = await raw(rig, settings=struct.pack(">HI", 0x4, 100))  # a 100-byte window per stream
    conn.request(1, b"/test.T/echo", b"a" * 1000)
    received = b""
    while len(received) < 100:
        kind, _, _, payload = await conn.frame()
        if kind == 0:
            received += payload
    assert len(received) == 100
    with pytest.raises(TimeoutError):  # nothing more until the window opens
        await asyncio.wait_for(conn.until(0), 0.3)
    conn.send(8, 0, 1, struct.pack(">I", 10_000))
    while len(received) < 1005:
        kind, _, _, payload = await conn.frame()
        if kind == 0:
            received += payload
    assert received[5:] == b"a" * 1000
    headers: Any = conn.decoder.decode(await conn.until(1, flags=0x1))
    assert ("grpc-status", "0") in headers
    await conn.close()


async def test_a_request_that_is_not_grpc_is_refused(rig: Rig) -> None:
    conn = await raw(rig)
    conn.request(1, b"/test.T/echo", b"x", content_type=b"application/json")
    headers: Any = conn.decoder.decode(await conn.until(1))
    assert (":status", "415") in headers
    await conn.close()
    bad = Raw(*await asyncio.open_connection("127.0.0.1", rig.port))
    bad.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await bad.writer.drain()
    await asyncio.wait_for(bad.reader.read(), 5)  # the server's SETTINGS, then the connection is closed
    assert bad.reader.at_eof()
    await bad.close()


async def test_a_stop_sends_goaway_and_refuses_later_streams(rig: Rig) -> None:
    conn = await raw(rig)
    conn.request(1, b"/test.T/slow", b"x")
    await asyncio.sleep(0.2)
    stopping = asyncio.ensure_future(rig.server.stop(grace=5))
    goaway = await conn.until(7)
    assert struct.unpack(">II", goaway[:8]) == (1, 0)  # stream 1 runs on; no error
    conn.request(3, b"/test.T/echo", b"y")
    rst = await conn.until(3)
    assert struct.unpack(">I", rst) == (0x7,)  # REFUSED_STREAM: never started, safe to retry
    conn.send(3, 0, 1, struct.pack(">I", 0x8))  # cancel stream 1: the connection is idle and closes
    await asyncio.wait_for(stopping, 5)
    assert rig.handlers.cancelled.is_set()
    await conn.close()


async def test_bytes_past_the_one_request_message_end_the_call(rig: Rig) -> None:
    conn = await raw(rig)
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/test.T/echo"), (b":authority", b"t"),
              (b"content-type", b"application/grpc"), (b"te", b"trailers")]  # fmt: skip
    conn.send(1, 0x4, 1, conn.encoder.encode(fields))
    conn.send(0, 0, 1, struct.pack(">BI", 0, 3) + b"abc")
    conn.send(0, 0, 1, b"more than the message declared, never ended")  # not buffered on and on
    headers: Any = conn.decoder.decode(await conn.until(1, flags=0x1))
    assert ("grpc-status", str(grpc.StatusCode.INTERNAL.value[0])) in headers
    assert struct.unpack(">I", await conn.until(3)) == (0,)  # RST_STREAM(NO_ERROR): send no more
    await conn.close()


async def test_a_frame_past_the_frame_size_closes_the_connection(rig: Rig) -> None:
    conn = await raw(rig)
    conn.writer.write((16_385).to_bytes(3, "big") + bytes((0, 0)) + (1).to_bytes(4, "big"))  # its payload never comes
    assert struct.unpack(">II", (await conn.until(7))[:8]) == (0, 0x6)  # GOAWAY(FRAME_SIZE_ERROR), not waiting
    await conn.close()


async def test_an_endless_header_block_closes_the_connection(rig: Rig) -> None:
    conn = await raw(rig)
    conn.send(1, 0, 1, b"\x82")  # HEADERS without END_HEADERS, then CONTINUATION frames that never end it
    for _ in range(MAX_HEADER_LIST // 16_000 + 1):
        conn.send(9, 0, 1, b"\x00\x01a\x01b" * 3_200)
    assert struct.unpack(">II", (await conn.until(7))[:8]) == (0, 0x1)
    await conn.close()


async def test_padding_is_returned_to_the_stream_window(rig: Rig) -> None:
    conn = await raw(rig)
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/test.T/echo"), (b":authority", b"t"),
              (b"content-type", b"application/grpc"), (b"te", b"trailers")]  # fmt: skip
    conn.send(1, 0x4, 1, conn.encoder.encode(fields))
    conn.send(0, 0x8, 1, bytes((200,)) + struct.pack(">BI", 0, 3) + b"a" + bytes(200))  # PADDED: 201 bytes of it
    while True:  # padding is flow-controlled (RFC 9113 §6.1) but never read: its window must come back
        kind, _, stream, payload = await conn.frame()
        if kind == 8 and stream == 1:
            assert struct.unpack(">I", payload) == (201,)
            break
    conn.send(0, 0x1, 1, b"bc")
    headers: Any = conn.decoder.decode(await conn.until(1, flags=0x1))
    assert ("grpc-status", "0") in headers
    await conn.close()


async def test_padding_longer_than_its_frame_closes_the_connection(rig: Rig) -> None:
    conn = await raw(rig)
    conn.request(1, b"/test.T/slow", b"x")
    conn.send(0, 0x8, 1, bytes((9,)) + b"abc")
    # GOAWAY(PROTOCOL_ERROR) naming stream 1: its handler may have run, the client must not retry it blindly
    assert struct.unpack(">II", (await conn.until(7))[:8]) == (1, 0x1)
    await conn.close()


@pytest.mark.parametrize(("setting", "code"), [((0x5, 0), 0x1), ((0x5, 1 << 24), 0x1), ((0x4, 1 << 31), 0x3)])
async def test_settings_out_of_range_close_the_connection(rig: Rig, setting: tuple[int, int], code: int) -> None:
    conn = await raw(rig, settings=struct.pack(">HI", *setting))  # PROTOCOL_ERROR; a window: FLOW_CONTROL_ERROR
    assert struct.unpack(">I", (await conn.until(7))[4:8]) == (code,)
    await conn.close()


async def test_a_stream_with_an_even_id_closes_the_connection(rig: Rig) -> None:
    conn = await raw(rig)
    conn.request(2, b"/test.T/echo", b"x")  # only a server opens even streams
    assert struct.unpack(">I", (await conn.until(7))[4:8]) == (0x1,)
    await conn.close()
