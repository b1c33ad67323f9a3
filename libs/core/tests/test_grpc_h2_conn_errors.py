"""The frame loop's connection and stream errors, from a bare HTTP/2 peer (H2Server's side; the client shares it).

Each misbehaviour gets the error code RFC 9113 names: FRAME_SIZE_ERROR, COMPRESSION_ERROR, PROTOCOL_ERROR for a
zero WINDOW_UPDATE, FLOW_CONTROL_ERROR for a window past 2^31-1 or DATA past our window, and ENHANCE_YOUR_CALM
for a peer that floods PINGs or SETTINGS while it does not read their answers (a transport that never drains).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import grpc
import hpack
import pytest

from omniroute_core import grpcx
from omniroute_core.grpc_h2 import H2Server
from omniroute_core.grpc_h2._frames import MAX_UNANSWERED
from omniroute_core.grpc_h2._server_conn import ServerConnection
from omniroute_core.grpc_h2._wire import STREAM_WINDOW
from omniroute_devservers.servers import free_port

PING, GOAWAY, RST, WINDOW = 6, 7, 3, 8
REQUEST = [(":method", "POST"), (":scheme", "http"), (":authority", "t"), ("content-type", "application/grpc")]


class Peer:
    """A bare HTTP/2 client connection; frames out, frames (or all bytes) in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.encoder = hpack.Encoder()

    def send(self, kind: int, flags: int, stream: int, payload: bytes = b"") -> None:
        self.writer.write(len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload)

    def open(self, stream: int, path: str) -> None:
        self.send(1, 0x4, stream, self.encoder.encode([*REQUEST, (":path", path)]))

    async def next_of(self, kind: int, stream: int | None = None) -> bytes:
        while True:
            head = await asyncio.wait_for(self.reader.readexactly(9), 10)
            payload = await self.reader.readexactly(int.from_bytes(head[:3], "big"))
            if head[3] == kind and (stream is None or int.from_bytes(head[5:9], "big") == stream):
                return payload

    async def goaway_code(self) -> int:
        return int(struct.unpack(">I", (await self.next_of(GOAWAY))[4:8])[0])

    def close(self) -> None:
        self.writer.close()


class Handlers:
    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()

    async def stall(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        self.started.set()
        try:
            await asyncio.sleep(30)  # never reads: the stream's window is not returned
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b""


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, Handlers]]:
    port, handlers = free_port(), Handlers()
    server = grpcx.Server(f"127.0.0.1:{port}", ["test.E"], "h2")
    methods: dict[str, Any] = {"stall": grpc.stream_unary_rpc_method_handler(handlers.stall)}
    server.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.E", methods),))
    await server.start()
    try:
        yield port, handlers
    finally:
        await server.stop(0)


async def connect(port: int) -> Peer:
    peer = Peer(*await asyncio.open_connection("127.0.0.1", port))
    peer.writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    peer.send(4, 0, 0)
    return peer


@pytest.mark.parametrize(
    ("kind", "payload", "code"),
    [
        (PING, b"1234567", 0x6),  # PING is 8 bytes: FRAME_SIZE_ERROR
        (WINDOW, b"\x00\x00\x01", 0x6),  # WINDOW_UPDATE is 4
        (WINDOW, struct.pack(">I", 0), 0x1),  # an increment of 0: PROTOCOL_ERROR
        (WINDOW, struct.pack(">I", (1 << 31) - 1), 0x3),  # past 2^31-1: FLOW_CONTROL_ERROR
        (4, b"\x00\x04\x00\x00", 0x6),  # SETTINGS not a multiple of 6 bytes
    ],
)
async def test_connection_frames_get_their_error_codes(server: Any, kind: int, payload: bytes, code: int) -> None:
    peer = await connect(server[0])
    peer.send(kind, 0, 0, payload)
    assert await peer.goaway_code() == code
    peer.close()


async def test_an_undecodable_header_block_is_a_compression_error(server: Any) -> None:
    peer = await connect(server[0])
    peer.send(1, 0x5, 1, b"\xff\xff\xff\xff\xff\xff\xff")  # an index that never ends
    assert await peer.goaway_code() == 0x9
    peer.close()


@pytest.mark.parametrize(("increment", "code"), [(0, 0x1), ((1 << 31) - 1, 0x3)])
async def test_a_bad_stream_window_update_resets_only_that_stream(server: Any, increment: int, code: int) -> None:
    port, handlers = server
    peer = await connect(port)
    peer.open(1, "/test.E/stall")
    await asyncio.wait_for(handlers.started.wait(), 10)  # a running call
    peer.send(WINDOW, 0, 1, struct.pack(">I", increment))
    assert struct.unpack(">I", await peer.next_of(RST, 1)) == (code,)
    await asyncio.wait_for(handlers.cancelled.wait(), 10)
    peer.send(PING, 0, 0, b"stillok!")  # the connection lives on
    assert await peer.next_of(PING) == b"stillok!"
    peer.close()


async def test_data_past_the_streams_window_is_a_flow_control_error(server: Any) -> None:
    peer = await connect(server[0])
    peer.open(1, "/test.E/stall")  # its handler never reads: past 1 MB unread its window stops coming back
    message = struct.pack(">BI", 0, 16_379) + b"m" * 16_379  # one frame each
    for _ in range(STREAM_WINDOW // len(message)):
        peer.send(0, 0, 1, message)
    peer.send(0, 0, 1, b"\x00")  # one byte past the window
    assert await peer.goaway_code() == 0x3
    peer.close()


class Transport:
    """A transport whose peer does not read: everything written stays here, the protocol paused."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closing = False

    def get_extra_info(self, name: str) -> Any:
        return None

    def write(self, data: bytes) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close


@pytest.mark.parametrize("kind", [PING, 4])
async def test_pings_or_settings_from_a_peer_that_does_not_read(kind: int) -> None:
    conn = ServerConnection(H2Server(max_receive=1024))
    transport = Transport()
    conn.connection_made(transport)
    conn.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    conn.pause_writing()  # what the transport does once its buffer is past its high-water mark
    payload = b"p" * 8 if kind == PING else b""
    flood = (len(payload).to_bytes(3, "big") + bytes((kind, 0)) + bytes(4) + payload) * (MAX_UNANSWERED + 1)
    conn.data_received(flood[: len(flood) // 2])
    assert not transport.is_closing()  # answered while the peer may still catch up
    conn.resume_writing()  # it did: the count starts again
    conn.pause_writing()
    conn.data_received(flood[len(flood) // 2 :])
    assert not transport.is_closing()
    conn.data_received(flood)
    goaway = bytes((0, 0, 8, GOAWAY, 0)) + bytes(4)
    at = transport.out.find(goaway)
    assert at >= 0
    assert struct.unpack(">II", transport.out[at + 9 : at + 17]) == (0, 0xB)  # ENHANCE_YOUR_CALM
    assert transport.is_closing()
    conn.connection_lost(None)
