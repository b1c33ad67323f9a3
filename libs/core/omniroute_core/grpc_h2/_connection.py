"""One HTTP/2 connection to the server (the client's side): its streams, opened as calls start."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Sequence

import grpc

from omniroute_core.grpc_h2._frames import FrameLoop
from omniroute_core.grpc_h2._hpack import literal_field
from omniroute_core.grpc_h2._stream import Stream
from omniroute_core.grpc_h2._wire import (
    CONN_WINDOW,
    MAX_STREAM_ID,
    PREFACE,
    REFUSED_STREAM,
    RST_CODES,
    SETTINGS,
    STREAM_WINDOW,
    WINDOW,
    frame,
    grpc_timeout,
    rpc_error,
)

__all__ = ["Connection", "NotProcessed"]


class NotProcessed(grpc.aio.AioRpcError):
    """``UNAVAILABLE`` for a call the server never processed: refused (REFUSED_STREAM), or opened past the last
    stream of its GOAWAY. The call may be sent again, on another connection (``_calls`` does so once)."""

    def __init__(self, details: str) -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class Connection(FrameLoop):
    """One HTTP/2 connection to the server, its streams and both directions' flow control."""

    def __init__(self, authority: bytes, on_close: Callable[[Connection], None]) -> None:
        super().__init__()
        self.authority = authority
        self._on_close = on_close
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.peer_max_streams = 1 << 31
        self.draining = False
        self._stream_slots: list[asyncio.Future[None]] = []

    # -- protocol callbacks ----------------------------------------------------------------------------------

    def connection_made(self, transport: object) -> None:
        settings = struct.pack(">HIHI", 0x2, 0, 0x4, STREAM_WINDOW)  # no server push; our stream window
        window = frame(WINDOW, 0, 0, struct.pack(">I", CONN_WINDOW - 65_535))
        self.start(transport, PREFACE + frame(SETTINGS, 0, 0, settings) + window)

    def connection_lost(self, exc: Exception | None) -> None:
        self._close(f"connection to the server lost: {exc or 'closed'}")

    # -- frames ----------------------------------------------------------------------------------------------

    def on_data(self, stream_id: int, data: bytes, end: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.on_data(data)
            if end and not stream.done:
                stream.fail(rpc_error(grpc.StatusCode.INTERNAL, "the stream ended without trailers"))

    def on_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]], end: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.on_headers(headers, end)

    def on_reset(self, stream_id: int, code: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            if code == REFUSED_STREAM:
                stream.finish(NotProcessed("the server refused the stream"))
                return
            status = RST_CODES.get(code, grpc.StatusCode.INTERNAL)
            stream.finish(rpc_error(status, f"stream reset by the server (HTTP/2 error {code:#x})"))

    def on_goaway(self, last_stream_id: int) -> None:
        self.draining = True
        for stream in [s for s in self.streams.values() if s.id > last_stream_id]:
            stream.finish(NotProcessed("the server is going away"))
        self._release_if_idle()

    def on_max_streams(self, value: int) -> None:
        self.peer_max_streams = value
        self._wake_slots()

    def on_protocol_error(self, why: str) -> None:
        self._close(why.replace("the peer", "the server"))

    # -- streams ---------------------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closed and not self.draining and self.next_id < MAX_STREAM_ID - 2

    async def open(
        self, path: bytes, message: bytes, metadata: Sequence[tuple[str, str]], timeout: float | None, limit: int
    ) -> Stream:
        """Start a unary-request call: HEADERS, then the request message as DATA that ends our side."""
        stream = await self.open_stream(path, metadata, timeout, limit)
        await self.send_data(stream, struct.pack(">BI", 0, len(message)) + message, end_stream=True)
        self.flush()
        return stream

    async def open_stream(
        self, path: bytes, metadata: Sequence[tuple[str, str]], timeout: float | None, limit: int
    ) -> Stream:
        """Start a call: its HEADERS (a slot among the server's concurrent streams first); the requests follow."""
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
        block = [b"\x83\x86", cached(b":path", path), cached(b":authority", self.authority),
                 cached(b"content-type", b"application/grpc"), cached(b"te", b"trailers")]  # fmt: skip
        if timeout is not None:
            block.append(cached(b"grpc-timeout", grpc_timeout(timeout)))
            stream.set_deadline(timeout)
        block += [literal_field(key.encode(), value.encode()) for key, value in metadata]
        self.write_headers(stream.id, self.header_block(block))
        return stream

    def closed_stream(self, stream: Stream) -> None:
        if self.streams.pop(stream.id, None) is not None:
            self._wake_slots()
            self._release_if_idle()

    def _wake_slots(self) -> None:
        slots, self._stream_slots = self._stream_slots, []
        for slot in slots:
            if not slot.done():
                slot.set_result(None)

    def _release_if_idle(self) -> None:
        if self.draining and not self.streams:
            self.shutdown()

    def _close(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        for stream in list(self.streams.values()):
            stream.finish(rpc_error(grpc.StatusCode.UNAVAILABLE, why))
        self.wake_senders()
        self._wake_slots()
        self._on_close(self)

    def close(self) -> None:
        self.shutdown()
        self._close("the channel was closed")
