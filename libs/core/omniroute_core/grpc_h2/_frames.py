"""The HTTP/2 frame loop both ends share: parsing, header blocks, SETTINGS, PING, flow control, batched writes.

A subclass is the client's or the server's connection; it gets whole header blocks (HEADERS plus any
CONTINUATION, HPACK-decoded) and DATA payloads per stream through ``on_headers`` / ``on_data``, resets through
``on_reset`` and GOAWAY through ``on_goaway``. Everything else of the connection's own state is handled here:
the peer's SETTINGS (acknowledged; its initial window, frame size and header table size applied), PING
acknowledged, WINDOW_UPDATE for the connection and for streams (``send_data`` waits for it), our connection
window returned as DATA arrives, and the frames of one loop step leaving as one write.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any, Protocol

import hpack

from omniroute_core.grpc_h2._hpack import HeaderEncoder
from omniroute_core.grpc_h2._hpack_decode import HeaderDecoder
from omniroute_core.grpc_h2._wire import (
    ACK,
    COMPRESSION_ERROR,
    CONN_WINDOW,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    MAX_STREAM_ID,
    PADDED,
    PING,
    PRIORITY,
    PROTOCOL_ERROR,
    RST,
    SETTINGS,
    WINDOW,
    H2Error,
    frame,
)

__all__ = ["FrameLoop", "Sending"]

# the largest frame payload the peer may send: SETTINGS_MAX_FRAME_SIZE, which neither end advertises (its default)
MAX_FRAME = 16_384
# PINGs and SETTINGS the peer may send while our writes wait on it (it does not read): each is answered, and the
# answers would pile up in memory without end; past this many it gets GOAWAY(ENHANCE_YOUR_CALM)
MAX_UNANSWERED = 1000
# how long a connection closed on a connection error may take to send its last frames to a peer that does not read
CLOSE_LINGER_S = 5.0


class Sending(Protocol):
    """What ``send_data`` needs of a stream: its id, our send window on it, and whether it has ended."""

    id: int
    send_window: int
    done: bool


class FrameLoop(asyncio.Protocol):
    """One HTTP/2 connection's frame loop; ``streams`` maps ids to the subclass's stream objects."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.decoder = HeaderDecoder()
        self.encoder = HeaderEncoder()
        self.streams: dict[int, Any] = {}
        self.peer_initial_window = 65_535
        self.peer_max_frame = 16_384
        self.send_window = 65_535
        self.received = 0  # connection-level bytes received since our last WINDOW_UPDATE
        self.last_stream_id = 0  # the highest stream the peer opened (the server's side; a client's stays 0)
        self.closed = False
        self._buf = b""
        self._block = bytearray()
        self._block_stream = 0
        self._block_end = False
        self._window_waiters: list[asyncio.Future[None]] = []
        self._out: list[bytes] = []  # frames queued for the write at the end of this loop step
        self._table_update = b""  # a dynamic table size update owed at the start of our next header block
        self._paused = False  # the transport's buffer is full (the peer does not read)
        self._unanswered = 0  # PINGs and SETTINGS answered while paused

    # -- what a subclass implements --------------------------------------------------------------------------

    def on_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]], end: bool) -> None:
        raise NotImplementedError

    def on_data(self, stream_id: int, data: bytes, end: bool) -> None:
        raise NotImplementedError

    def on_reset(self, stream_id: int, code: int) -> None:
        raise NotImplementedError

    def on_goaway(self, last_stream_id: int) -> None:
        raise NotImplementedError

    def on_max_streams(self, value: int) -> None:
        """The peer's SETTINGS_MAX_CONCURRENT_STREAMS."""

    def on_protocol_error(self, why: str) -> None:
        """The connection is unusable (a GOAWAY was sent and the transport closed)."""

    # -- reading ---------------------------------------------------------------------------------------------

    def start(self, transport: Any, opening: bytes) -> None:
        """``connection_made``'s common part: no Nagle (a call or reply is one write), then ``opening``."""
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(opening)

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        try:
            while end - pos >= 9:
                size = int.from_bytes(buf[pos : pos + 3], "big")
                if size > MAX_FRAME:  # else a peer could make us buffer up to 16 MiB for one frame
                    raise H2Error(FRAME_SIZE_ERROR, f"a frame of {size} bytes, past SETTINGS_MAX_FRAME_SIZE")
                if end - pos < 9 + size:
                    break
                kind, flags = buf[pos + 3], buf[pos + 4]
                stream_id = int.from_bytes(buf[pos + 5 : pos + 9], "big") & MAX_STREAM_ID
                self._on_frame(kind, flags, stream_id, buf[pos + 9 : pos + 9 + size])
                pos += 9 + size
        except H2Error as exc:
            self.protocol_error(f"malformed frame from the peer: {exc!r}", exc.code)
            return
        except hpack.HPACKError as bad_block:  # a name of its own per clause: mypyc types each name once
            self.protocol_error(f"malformed header block from the peer: {bad_block!r}", COMPRESSION_ERROR)
            return
        except (ValueError, struct.error, IndexError) as bad_frame:
            self.protocol_error(f"malformed frame from the peer: {bad_frame!r}")
            return
        self._buf = buf[pos:]
        if self.received >= CONN_WINDOW // 2:
            self.write(frame(WINDOW, 0, 0, struct.pack(">I", self.received)))
            self.received = 0

    def pause_writing(self) -> None:  # the socket buffer is full: writes queue in the transport meanwhile
        self._paused = True  # the peer's flow-control windows bound what data can queue; _answered the rest

    def resume_writing(self) -> None:
        self._paused = False
        self._unanswered = 0

    def _answered(self) -> None:
        if self._paused:
            self._unanswered += 1
            if self._unanswered > MAX_UNANSWERED:
                raise H2Error(ENHANCE_YOUR_CALM, "PINGs or SETTINGS from a peer that does not read our answers")

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._block_stream and kind != CONTINUATION:
            raise ValueError("a header block was interrupted")
        if kind == DATA:
            self.received += len(payload)
            if self.received > CONN_WINDOW:
                raise H2Error(FLOW_CONTROL_ERROR, "DATA past our connection window")
            if flags & PADDED:
                padding = payload[0] + 1
                if padding > len(payload):
                    raise ValueError("padding longer than its frame")
                payload = payload[1 : len(payload) + 1 - padding]
                if stream_id in self.streams:  # never buffered: its share of the stream window goes back now
                    self.write(frame(WINDOW, 0, stream_id, struct.pack(">I", padding)))
            self.on_data(stream_id, payload, bool(flags & END_STREAM))
        elif kind == HEADERS:
            if flags & PADDED:
                if payload[0] >= len(payload):
                    raise ValueError("padding longer than its frame")
                payload = payload[1 : len(payload) - payload[0]]
            if flags & PRIORITY:
                payload = payload[5:]
            if not stream_id:
                raise ValueError("HEADERS on stream 0")
            self._block[:] = payload
            self._block_end = bool(flags & END_STREAM)
            self._block_stream = stream_id
            if flags & END_HEADERS:
                self._header_block()
        elif kind == CONTINUATION:
            if not self._block_stream or stream_id != self._block_stream:
                raise ValueError("CONTINUATION of another stream")
            self._block += payload
            if len(self._block) > self.decoder.max_header_list_size:
                # a block cannot be longer than the list it encodes (every field counts 32 bytes more than
                # its name and value); without this an endless run of CONTINUATION frames is held in memory
                raise ValueError("a header block past our header list limit")
            if flags & END_HEADERS:
                self._header_block()
        elif kind == SETTINGS and not flags & ACK:
            if len(payload) % 6:
                raise H2Error(FRAME_SIZE_ERROR, f"SETTINGS of {len(payload)} bytes")
            self._answered()
            self._settings(payload)
            self.write(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            if len(payload) != 8:
                raise H2Error(FRAME_SIZE_ERROR, f"PING of {len(payload)} bytes")
            self._answered()
            self.write(frame(PING, ACK, 0, payload))
        elif kind == WINDOW:
            self._window_update(stream_id, payload)
        elif kind == RST:
            if len(payload) != 4:
                raise H2Error(FRAME_SIZE_ERROR, f"RST_STREAM of {len(payload)} bytes")
            self.on_reset(stream_id, int.from_bytes(payload, "big"))
        elif kind == GOAWAY:
            self.on_goaway(int.from_bytes(payload[:4], "big") & MAX_STREAM_ID)

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        """WINDOW_UPDATE: an increment of 0 is a protocol error, a window past 2^31-1 a flow-control error; of
        the connection's, a connection error; of a stream's, that stream is reset (RFC 9113 §6.9)."""
        if len(payload) != 4:
            raise H2Error(FRAME_SIZE_ERROR, f"WINDOW_UPDATE of {len(payload)} bytes")
        increment = int.from_bytes(payload, "big") & MAX_STREAM_ID
        if stream_id == 0:
            if not increment:
                raise H2Error(PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
            self.send_window += increment
            if self.send_window > MAX_STREAM_ID:
                raise H2Error(FLOW_CONTROL_ERROR, "the connection's window past 2^31-1")
        elif (stream := self.streams.get(stream_id)) is not None:
            if not increment or stream.send_window + increment > MAX_STREAM_ID:
                code = FLOW_CONTROL_ERROR if increment else PROTOCOL_ERROR
                self.write(frame(RST, 0, stream_id, struct.pack(">I", code)))
                self.on_reset(stream_id, code)
                return
            stream.send_window += increment
        self.wake_senders()

    def _header_block(self) -> None:
        stream_id, self._block_stream = self._block_stream, 0
        # decoded even when the stream is gone: HPACK's dynamic table must see every block
        headers = self.decoder.decode(bytes(self._block))
        self.on_headers(stream_id, headers, self._block_end)

    def _settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - len(payload) % 6, 6):
            key, value = struct.unpack_from(">HI", payload, offset)
            if key == 0x1:
                self._table_update += self.encoder.shrink(value)
            elif key == 0x4:
                if value > MAX_STREAM_ID:
                    raise H2Error(FLOW_CONTROL_ERROR, f"SETTINGS_INITIAL_WINDOW_SIZE {value} past 2^31-1")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > MAX_STREAM_ID:
                        raise H2Error(FLOW_CONTROL_ERROR, "a stream's window past 2^31-1")
                self.wake_senders()
            elif key == 0x5:
                if not MAX_FRAME <= value < 1 << 24:  # 0 would stall every send (RFC 9113 §6.5.2)
                    raise ValueError(f"SETTINGS_MAX_FRAME_SIZE {value} out of range")
                self.peer_max_frame = value
            elif key == 0x3:
                self.on_max_streams(value)

    # -- writing ---------------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data``; what is queued within one step of the event loop leaves as one write at its end
        (the frames of calls started or answered together, acknowledgements, resets), not one system call each."""
        if self.transport is None or self.closed:
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def flush(self) -> None:
        """Send what is queued now, not at the end of the loop step: after the last frames of something the peer
        is waiting for (a call's request, a reply's trailers, a stream's first message), so the rest of this
        step (the caller's bookkeeping, other callbacks) runs while the peer already works, not before it can."""
        if self._out:
            self._flush()

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def header_block(self, fields: list[bytes]) -> bytes:
        """Encoded fields as one block, after any table size update the peer's SETTINGS made us owe."""
        if self._table_update:
            fields.insert(0, self._table_update)
            self._table_update = b""
        return b"".join(fields)

    def write_headers(self, stream_id: int, block: bytes, flags: int = 0) -> None:
        """A header block as HEADERS (``flags``: END_STREAM or not), split into CONTINUATION frames past the
        peer's frame size."""
        size = self.peer_max_frame
        if len(block) <= size:
            self.write(frame(HEADERS, END_HEADERS | flags, stream_id, block))
            return
        parts = [frame(HEADERS, flags, stream_id, block[:size])]
        for start in range(size, len(block), size):
            last = start + size >= len(block)
            parts.append(frame(CONTINUATION, END_HEADERS if last else 0, stream_id, block[start : start + size]))
        self.write(b"".join(parts))

    async def send_data(self, stream: Sending, body: bytes, *, end_stream: bool) -> bool:
        """``body`` as DATA frames within the peer's windows, waiting for WINDOW_UPDATE when they are spent.
        False when the stream ended or the connection closed before all of it could be sent."""
        view = memoryview(body)
        while True:
            if stream.done or self.closed:  # reset, cancelled or past its deadline while waiting for window
                return False
            n = min(len(view), self.peer_max_frame, self.send_window, stream.send_window)
            if n == len(view):
                self.write(frame(DATA, END_STREAM if end_stream else 0, stream.id, bytes(view)))
                self.send_window -= n
                stream.send_window -= n
                return True
            if n > 0:
                self.write(frame(DATA, 0, stream.id, bytes(view[:n])))
                self.send_window -= n
                stream.send_window -= n
                view = view[n:]
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._window_waiters.append(waiter)
            await waiter

    def wake_senders(self) -> None:
        waiters, self._window_waiters = self._window_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def shutdown(self) -> None:
        """Send what is queued, then close the transport."""
        self._flush()
        if self.transport is not None:
            self.transport.close()

    def protocol_error(self, why: str, code: int = PROTOCOL_ERROR) -> None:
        """A connection error: GOAWAY(``code``), then the connection closes (aborted if what is left to send
        has not left within ``CLOSE_LINGER_S``: a peer that does not read does not hold it open)."""
        # the last stream we may have acted on: the peer must not take the calls up to it as never started
        self.write(frame(GOAWAY, 0, 0, struct.pack(">II", self.last_stream_id, code)))
        self.shutdown()
        transport = self.transport
        if transport is not None:
            asyncio.get_running_loop().call_later(CLOSE_LINGER_S, transport.abort)
        self.on_protocol_error(why)
