"""One HTTP/2 connection to the server: the frame loop, its streams and both directions' flow control."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import hpack

from omniroute_core.grpc_h2._hpack import HeaderEncoder, literal_field
from omniroute_core.grpc_h2._stream import Stream
from omniroute_core.grpc_h2._wire import (
    ACK,
    CONN_WINDOW,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    MAX_STREAM_ID,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    RST,
    RST_CODES,
    SETTINGS,
    STREAM_WINDOW,
    WINDOW,
    frame,
    grpc_timeout,
    rpc_error,
)

__all__ = ["Connection"]


class Connection(asyncio.Protocol):
    """One HTTP/2 connection to the server, its streams and both directions' flow control."""

    def __init__(self, authority: bytes, on_close: Callable[[Connection], None]) -> None:
        self.authority = authority
        self._on_close = on_close
        self.transport: Any = None
        self.decoder = hpack.Decoder()
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.peer_initial_window = 65_535
        self.peer_max_frame = 16_384
        self.peer_max_streams = 1 << 31
        self.send_window = 65_535
        self.received = 0
        self.closed = False
        self.draining = False
        self._buf = b""
        self._block = bytearray()
        self._block_stream = 0
        self._block_end = False
        self._window_waiters: list[asyncio.Future[None]] = []
        self._out: list[bytes] = []  # frames queued for the write at the end of this loop step
        self.encoder = HeaderEncoder()
        self._table_update = b""  # a dynamic table size update owed at the start of the next header block
        self._stream_slots: list[asyncio.Future[None]] = []

    # -- protocol callbacks ----------------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence Any
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a call is one write: send it now
        settings = struct.pack(">HIHI", 0x2, 0, 0x4, STREAM_WINDOW)  # no server push; our stream window
        transport.write(
            PREFACE + frame(SETTINGS, 0, 0, settings) + frame(WINDOW, 0, 0, struct.pack(">I", CONN_WINDOW - 65_535))
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._close(f"connection to the server lost: {exc or 'closed'}")

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        try:
            while end - pos >= 9:
                size = int.from_bytes(buf[pos : pos + 3], "big")
                if end - pos < 9 + size:
                    break
                kind, flags = buf[pos + 3], buf[pos + 4]
                stream_id = int.from_bytes(buf[pos + 5 : pos + 9], "big") & MAX_STREAM_ID
                self._on_frame(kind, flags, stream_id, buf[pos + 9 : pos + 9 + size])
                pos += 9 + size
        except (hpack.HPACKError, ValueError, struct.error, IndexError) as exc:
            self._protocol_error(f"malformed frame from the server: {exc!r}")
            return
        self._buf = buf[pos:]
        if self.received >= CONN_WINDOW // 2:
            self.write(frame(WINDOW, 0, 0, struct.pack(">I", self.received)))
            self.received = 0

    def pause_writing(self) -> None:  # the socket buffer is full: writes queue in the transport meanwhile
        pass

    def resume_writing(self) -> None:
        pass

    # -- frames ----------------------------------------------------------------------------------------------

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._block_stream and kind != CONTINUATION:
            raise ValueError("a header block was interrupted")
        if kind == DATA:
            self.received += len(payload)
            if flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.on_data(payload)
                if flags & END_STREAM and not stream.done:
                    stream.fail(rpc_error(grpc.StatusCode.INTERNAL, "the stream ended without trailers"))
        elif kind == HEADERS:
            if flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & PRIORITY:
                payload = payload[5:]
            self._block[:] = payload
            self._block_end = bool(flags & END_STREAM)
            self._block_stream = stream_id
            if flags & END_HEADERS:
                self._header_block()
        elif kind == CONTINUATION:
            if stream_id != self._block_stream:
                raise ValueError("CONTINUATION of another stream")
            self._block += payload
            if flags & END_HEADERS:
                self._header_block()
        elif kind == SETTINGS and not flags & ACK:
            self._settings(payload)
            self.write(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            self.write(frame(PING, ACK, 0, payload))
        elif kind == WINDOW:
            increment = int.from_bytes(payload[:4], "big") & MAX_STREAM_ID
            if stream_id == 0:
                self.send_window += increment
            elif (stream := self.streams.get(stream_id)) is not None:
                stream.send_window += increment
            self._wake_senders()
        elif kind == RST:
            stream = self.streams.get(stream_id)
            if stream is not None:
                code = RST_CODES.get(int.from_bytes(payload[:4], "big"), grpc.StatusCode.INTERNAL)
                stream.finish(rpc_error(code, f"stream reset by the server (HTTP/2 error {payload[:4].hex()})"))
        elif kind == GOAWAY:
            last = int.from_bytes(payload[:4], "big") & MAX_STREAM_ID
            self.draining = True
            for stream in [s for s in self.streams.values() if s.id > last]:
                stream.finish(rpc_error(grpc.StatusCode.UNAVAILABLE, "the server is going away"))
            self._release_if_idle()

    def _header_block(self) -> None:
        stream_id, self._block_stream = self._block_stream, 0
        # decoded even when the stream is gone: HPACK's dynamic table must see every block
        headers = self.decoder.decode(bytes(self._block), raw=True)
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.on_headers(headers, self._block_end)  # type: ignore[arg-type]

    def _settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - len(payload) % 6, 6):
            key, value = struct.unpack_from(">HI", payload, offset)
            if key == 0x1:
                self._table_update += self.encoder.shrink(value)
            elif key == 0x4:
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                self._wake_senders()
            elif key == 0x5:
                self.peer_max_frame = value
            elif key == 0x3:
                self.peer_max_streams = value
                self._wake_slots()

    # -- streams ---------------------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closed and not self.draining and self.next_id < MAX_STREAM_ID - 2

    async def open(
        self, path: bytes, message: bytes, metadata: Sequence[tuple[str, str]], timeout: float | None, limit: int
    ) -> Stream:
        """Start a call: HEADERS, then the request message as DATA that ends our side of the stream."""
        while len(self.streams) >= self.peer_max_streams and not self.closed:
            slot = asyncio.get_running_loop().create_future()
            self._stream_slots.append(slot)
            await slot
        if self.closed:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "connection to the server lost")
        stream = Stream(self, self.next_id, limit)
        self.next_id += 2
        self.streams[stream.id] = stream
        cached = self.encoder.cached
        # :method POST and :scheme http are static-table entries 3 and 6
        block = [self._table_update, b"\x83\x86", cached(b":path", path), cached(b":authority", self.authority),
                 cached(b"content-type", b"application/grpc"), cached(b"te", b"trailers")]  # fmt: skip
        self._table_update = b""
        if timeout is not None:
            block.append(cached(b"grpc-timeout", grpc_timeout(timeout)))
            stream.set_deadline(timeout)
        block += [literal_field(key.encode(), value.encode()) for key, value in metadata]
        body = struct.pack(">BI", 0, len(message)) + message
        self._write_headers(stream.id, b"".join(block))
        await self._send_data(stream, body)
        return stream

    def _write_headers(self, stream_id: int, block: bytes) -> None:
        size = self.peer_max_frame
        if len(block) <= size:
            self.write(frame(HEADERS, END_HEADERS, stream_id, block))
            return
        parts = [frame(HEADERS, 0, stream_id, block[:size])]
        for start in range(size, len(block), size):
            last = start + size >= len(block)
            parts.append(frame(CONTINUATION, END_HEADERS if last else 0, stream_id, block[start : start + size]))
        self.write(b"".join(parts))

    async def _send_data(self, stream: Stream, body: bytes) -> None:
        view = memoryview(body)
        while True:
            if stream.done:  # reset, cancelled or past its deadline while waiting for window
                return
            n = min(len(view), self.peer_max_frame, self.send_window, stream.send_window)
            if n == len(view):
                self.write(frame(DATA, END_STREAM, stream.id, bytes(view)))
                self.send_window -= n
                stream.send_window -= n
                return
            if n > 0:
                self.write(frame(DATA, 0, stream.id, bytes(view[:n])))
                self.send_window -= n
                stream.send_window -= n
                view = view[n:]
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._window_waiters.append(waiter)
            await waiter
            if self.closed:
                return

    def closed_stream(self, stream: Stream) -> None:
        if self.streams.pop(stream.id, None) is not None:
            self._wake_slots()
            self._release_if_idle()

    def write(self, data: bytes) -> None:
        """Queue ``data``; what is queued within one step of the event loop leaves as one write at its end
        (the frames of calls started together, acknowledgements, resets), not one system call each."""
        if self.transport is None or self.closed:
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _shutdown(self) -> None:
        self._flush()
        if self.transport is not None:
            self.transport.close()

    def _wake_senders(self) -> None:
        waiters, self._window_waiters = self._window_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _wake_slots(self) -> None:
        slots, self._stream_slots = self._stream_slots, []
        for slot in slots:
            if not slot.done():
                slot.set_result(None)

    def _release_if_idle(self) -> None:
        if self.draining and not self.streams:
            self._shutdown()

    def _protocol_error(self, why: str) -> None:
        self.write(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0x1)))
        self._shutdown()
        self._close(why)

    def _close(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        for stream in list(self.streams.values()):
            stream.finish(rpc_error(grpc.StatusCode.UNAVAILABLE, why))
        self._wake_senders()
        self._wake_slots()
        self._on_close(self)

    def close(self) -> None:
        self._shutdown()
        self._close("the channel was closed")
