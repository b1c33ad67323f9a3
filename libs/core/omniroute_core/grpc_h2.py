"""A pure-asyncio gRPC client over HTTP/2: the edge's channel to the executor, without gRPC core's threads.

Why: a grpc.aio call hands every event between gRPC core's EventEngine threads, its completion-queue poller
thread and the asyncio loop; on this machine that is ~11 thread wake-ups per unary call across both processes
and ~0.5 ms of latency per side when the processes idle between requests (``bench/grpc_latency.py``,
``bench/PROFILE.md``). This client runs the HTTP/2 framing in the event loop's own protocol callbacks: a call is
one socket write and, for the reply, one loop wake-up. The server side stays stock gRPC, and so does the wire.

Scope: unary-unary and unary-stream calls (what the executor offers), with the grpc.aio call surface the relay
uses: a unary call is awaited; a stream call has ``read()`` (a message, or ``grpc.aio.EOF``) and
``trailing_metadata()``; both have ``cancel()``. Failures raise ``grpc.aio.AioRpcError`` with the status the
server sent, ``UNAVAILABLE`` when the connection could not be made or broke, ``DEADLINE_EXCEEDED`` at the
deadline; a cancelled call raises ``asyncio.CancelledError`` like grpc.aio's. HTTP/2 as RFC 9113 asks of a
client: SETTINGS (acknowledged; the peer's initial window and frame size applied), PING acknowledged, flow
control both ways (a body larger than the peer's window waits for its WINDOW_UPDATEs; received bytes are
returned to the peer as they arrive, per stream only while less than ``_QUEUED_LIMIT`` bytes wait unread, so a
slow reader slows the server down), GOAWAY (no new stream on that connection; streams past its last id fail
``UNAVAILABLE``; the next call opens a new connection), RST_STREAM mapped to gRPC codes, HPACK through the
``hpack`` package (the header blocks of gRPC core use Huffman coding and the dynamic table). Deadlines go to the
server as ``grpc-timeout`` and are enforced here too; cancellation sends RST_STREAM(CANCEL), which cancels the
server's handler. No TLS (sibling services on the cluster network), no compression (none is advertised).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import socket
import struct
from collections.abc import Callable, Generator, Sequence
from typing import Any
from urllib.parse import unquote

import grpc
import hpack

__all__ = ["H2Channel"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST, _SETTINGS, _PING, _GOAWAY, _WINDOW, _CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
_MAX_STREAM_ID = (1 << 31) - 1
_CANCEL = 0x8
# our receive windows: per stream (SETTINGS_INITIAL_WINDOW_SIZE) and for the connection
_STREAM_WINDOW = 4 << 20
_CONN_WINDOW = 1 << 30
# complete messages a stream may hold unread before its window stops being returned to the server
_QUEUED_LIMIT = 1 << 20
_RST_CODES = {
    0x7: grpc.StatusCode.UNAVAILABLE,  # REFUSED_STREAM: the server never processed it
    0x8: grpc.StatusCode.CANCELLED,
    0xB: grpc.StatusCode.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: grpc.StatusCode.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}
_HTTP_CODES = {
    400: grpc.StatusCode.INTERNAL,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    429: grpc.StatusCode.UNAVAILABLE,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


def _hpack_int(value: int, prefix_bits: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((value,))
    out = bytearray((limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name: bytes, value: bytes) -> bytes:
    """An HPACK literal field without indexing, with a literal name, no Huffman coding (RFC 7541 §6.2.2)."""
    return b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value


def _timeout(seconds: float) -> bytes:
    """``grpc-timeout``: at most 8 digits and a unit."""
    ms = max(1, int(seconds * 1000))
    return b"%dm" % ms if ms < 100_000_000 else b"%dS" % min(99_999_999, int(seconds))


def _error(code: grpc.StatusCode, details: str, trailers: Sequence[tuple[str, str | bytes]] = ()) -> Exception:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details)


class _Stream:
    """One call's HTTP/2 stream: received messages, the final status, and our send window on it."""

    def __init__(self, conn: _Connection, stream_id: int, max_message: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.max_message = max_message
        self.send_window = conn.peer_initial_window
        self.messages: collections.deque[bytes] = collections.deque()
        self.queued = 0  # bytes of complete messages not read yet
        self.unacked = 0  # bytes received and not yet returned to the server's window
        self.partial = bytearray()
        self.headers_seen = False
        self.error: Exception | None = None
        self.trailers: list[tuple[str, str | bytes]] = []
        self.done = False
        self.cancelled = False
        self._waiter: asyncio.Future[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None

    # -- the connection's side ---------------------------------------------------------------------------------

    def on_headers(self, headers: list[tuple[bytes, bytes]], end: bool) -> None:
        fields = dict(headers)
        if not self.headers_seen and not end:
            self.headers_seen = True
            self._check_response(fields, ended=False)
            return
        self.headers_seen = True
        if not end:  # headers after the response headers that do not end the stream: not gRPC
            self.fail(_error(grpc.StatusCode.INTERNAL, "unexpected HEADERS frame"), reset=True)
            return
        if b":status" in fields and not self._check_response(fields, ended=True):
            return
        code = _CODES.get(int(fields.get(b"grpc-status", b"2") or 2), grpc.StatusCode.UNKNOWN)
        details = unquote(fields.get(b"grpc-message", b"").decode("latin-1"))
        self.trailers = [_metadata(k, v) for k, v in headers if not k.startswith(b":") and not k.startswith(b"grpc-")]
        if self.partial:
            code, details = grpc.StatusCode.INTERNAL, "the stream ended inside a message"
        self.finish(None if code == grpc.StatusCode.OK else _error(code, details, self.trailers))

    def _check_response(self, fields: dict[bytes, bytes], *, ended: bool) -> bool:
        """A gRPC reply is HTTP 200 with a gRPC content type; anything else fails the call (and resets the
        stream unless the server already ended it)."""
        status = fields.get(b":status", b"")
        if status != b"200":
            code = _HTTP_CODES.get(int(status) if status.isdigit() else 0, grpc.StatusCode.UNKNOWN)
            self.fail(_error(code, f"HTTP status {status.decode('latin-1')} from the server"), reset=not ended)
            return False
        if not fields.get(b"content-type", b"").startswith(b"application/grpc"):
            self.fail(_error(grpc.StatusCode.UNKNOWN, "the server's reply is not gRPC"), reset=not ended)
            return False
        return True

    def on_data(self, data: bytes) -> None:
        self.unacked += len(data)
        buf = self.partial
        buf += data
        while len(buf) >= 5:
            compressed, size = struct.unpack_from(">BI", buf)
            if compressed:
                self.fail(_error(grpc.StatusCode.INTERNAL, "compressed message, none was accepted"), reset=True)
                return
            if size > self.max_message:
                self.fail(_error(grpc.StatusCode.RESOURCE_EXHAUSTED, f"message of {size} bytes"), reset=True)
                return
            if len(buf) < 5 + size:
                break
            self.messages.append(bytes(buf[5 : 5 + size]))
            self.queued += size
            del buf[: 5 + size]
        self.return_window()
        self._wake()

    def return_window(self) -> None:
        if self.unacked >= _STREAM_WINDOW // 2 and self.queued <= _QUEUED_LIMIT and not self.done:
            self.conn.write(_frame(_WINDOW, 0, self.id, struct.pack(">I", self.unacked)))
            self.unacked = 0

    def fail(self, error: Exception, *, reset: bool = False) -> None:
        if not self.done and reset:
            self.conn.write(_frame(_RST, 0, self.id, struct.pack(">I", _CANCEL)))
        self.finish(error)

    def finish(self, error: Exception | None) -> None:
        if self.done:
            return
        self.done = True
        self.error = error
        if self._deadline is not None:
            self._deadline.cancel()
        self.conn.closed_stream(self)
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the call's side -------------------------------------------------------------------------------------

    def set_deadline(self, timeout: float) -> None:
        def expire() -> None:
            self.fail(_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), reset=True)

        self._deadline = asyncio.get_running_loop().call_later(timeout, expire)

    def cancel(self) -> None:
        if not self.done:
            self.cancelled = True
            self.fail(_error(grpc.StatusCode.CANCELLED, "Locally cancelled"), reset=True)

    async def next_message(self) -> bytes | None:
        """The next message; None once the stream ended OK. Raises the call's error."""
        while True:
            if self.messages:
                message = self.messages.popleft()
                self.queued -= len(message)
                self.return_window()
                return message
            if self.done:
                if self.cancelled:
                    raise asyncio.CancelledError
                if self.error is not None:
                    raise self.error
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    async def ended(self) -> None:
        while not self.done:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter


def _metadata(key: bytes, value: bytes) -> tuple[str, str | bytes]:
    name = key.decode("latin-1")
    if name.endswith("-bin"):
        return name, base64.b64decode(value + b"=" * (-len(value) % 4))
    return name, value.decode("latin-1")


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection to the server, its streams and both directions' flow control."""

    def __init__(self, authority: bytes, on_close: Callable[[_Connection], None]) -> None:
        self.authority = authority
        self._on_close = on_close
        self.transport: Any = None
        self.decoder = hpack.Decoder()
        self.streams: dict[int, _Stream] = {}
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
        self._stream_slots: list[asyncio.Future[None]] = []

    # -- protocol callbacks ----------------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence Any
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a call is one write: send it now
        settings = struct.pack(">HIHI", 0x2, 0, 0x4, _STREAM_WINDOW)  # no server push; our stream window
        transport.write(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, settings)
            + _frame(_WINDOW, 0, 0, struct.pack(">I", _CONN_WINDOW - 65_535))
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
                stream_id = int.from_bytes(buf[pos + 5 : pos + 9], "big") & _MAX_STREAM_ID
                self._on_frame(kind, flags, stream_id, buf[pos + 9 : pos + 9 + size])
                pos += 9 + size
        except (hpack.HPACKError, ValueError, struct.error, IndexError) as exc:
            self._protocol_error(f"malformed frame from the server: {exc!r}")
            return
        self._buf = buf[pos:]
        if self.received >= _CONN_WINDOW // 2:
            self.write(_frame(_WINDOW, 0, 0, struct.pack(">I", self.received)))
            self.received = 0

    def pause_writing(self) -> None:  # the socket buffer is full: writes queue in the transport meanwhile
        pass

    def resume_writing(self) -> None:
        pass

    # -- frames ----------------------------------------------------------------------------------------------

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._block_stream and kind != _CONTINUATION:
            raise ValueError("a header block was interrupted")
        if kind == _DATA:
            self.received += len(payload)
            if flags & _PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.on_data(payload)
                if flags & _END_STREAM and not stream.done:
                    stream.fail(_error(grpc.StatusCode.INTERNAL, "the stream ended without trailers"))
        elif kind == _HEADERS:
            if flags & _PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & _PRIORITY:
                payload = payload[5:]
            self._block[:] = payload
            self._block_end = bool(flags & _END_STREAM)
            self._block_stream = stream_id
            if flags & _END_HEADERS:
                self._header_block()
        elif kind == _CONTINUATION:
            if stream_id != self._block_stream:
                raise ValueError("CONTINUATION of another stream")
            self._block += payload
            if flags & _END_HEADERS:
                self._header_block()
        elif kind == _SETTINGS and not flags & _ACK:
            self._settings(payload)
            self.write(_frame(_SETTINGS, _ACK, 0))
        elif kind == _PING and not flags & _ACK:
            self.write(_frame(_PING, _ACK, 0, payload))
        elif kind == _WINDOW:
            increment = int.from_bytes(payload[:4], "big") & _MAX_STREAM_ID
            if stream_id == 0:
                self.send_window += increment
            elif (stream := self.streams.get(stream_id)) is not None:
                stream.send_window += increment
            self._wake_senders()
        elif kind == _RST:
            stream = self.streams.get(stream_id)
            if stream is not None:
                code = _RST_CODES.get(int.from_bytes(payload[:4], "big"), grpc.StatusCode.INTERNAL)
                stream.finish(_error(code, f"stream reset by the server (HTTP/2 error {payload[:4].hex()})"))
        elif kind == _GOAWAY:
            last = int.from_bytes(payload[:4], "big") & _MAX_STREAM_ID
            self.draining = True
            for stream in [s for s in self.streams.values() if s.id > last]:
                stream.finish(_error(grpc.StatusCode.UNAVAILABLE, "the server is going away"))
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
            if key == 0x4:
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
        return not self.closed and not self.draining and self.next_id < _MAX_STREAM_ID - 2

    async def open(
        self, path: bytes, message: bytes, metadata: Sequence[tuple[str, str]], timeout: float | None, limit: int
    ) -> _Stream:
        """Start a call: HEADERS, then the request message as DATA that ends our side of the stream."""
        while len(self.streams) >= self.peer_max_streams and not self.closed:
            slot = asyncio.get_running_loop().create_future()
            self._stream_slots.append(slot)
            await slot
        if self.closed:
            raise _error(grpc.StatusCode.UNAVAILABLE, "connection to the server lost")
        stream = _Stream(self, self.next_id, limit)
        self.next_id += 2
        self.streams[stream.id] = stream
        block = [b"\x83\x86", _literal(b":path", path), _literal(b":authority", self.authority),
                 _literal(b"content-type", b"application/grpc"), _literal(b"te", b"trailers")]  # fmt: skip
        if timeout is not None:
            block.append(_literal(b"grpc-timeout", _timeout(timeout)))
            stream.set_deadline(timeout)
        block += [_literal(key.encode(), value.encode()) for key, value in metadata]
        body = struct.pack(">BI", 0, len(message)) + message
        self._write_headers(stream.id, b"".join(block))
        await self._send_data(stream, body)
        return stream

    def _write_headers(self, stream_id: int, block: bytes) -> None:
        size = self.peer_max_frame
        if len(block) <= size:
            self.write(_frame(_HEADERS, _END_HEADERS, stream_id, block))
            return
        parts = [_frame(_HEADERS, 0, stream_id, block[:size])]
        for start in range(size, len(block), size):
            last = start + size >= len(block)
            parts.append(_frame(_CONTINUATION, _END_HEADERS if last else 0, stream_id, block[start : start + size]))
        self.write(b"".join(parts))

    async def _send_data(self, stream: _Stream, body: bytes) -> None:
        view = memoryview(body)
        while True:
            if stream.done:  # reset, cancelled or past its deadline while waiting for window
                return
            n = min(len(view), self.peer_max_frame, self.send_window, stream.send_window)
            if n == len(view):
                self.write(_frame(_DATA, _END_STREAM, stream.id, bytes(view)))
                self.send_window -= n
                stream.send_window -= n
                return
            if n > 0:
                self.write(_frame(_DATA, 0, stream.id, bytes(view[:n])))
                self.send_window -= n
                stream.send_window -= n
                view = view[n:]
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._window_waiters.append(waiter)
            await waiter
            if self.closed:
                return

    def closed_stream(self, stream: _Stream) -> None:
        if self.streams.pop(stream.id, None) is not None:
            self._wake_slots()
            self._release_if_idle()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

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
        if self.draining and not self.streams and self.transport is not None:
            self.transport.close()

    def _protocol_error(self, why: str) -> None:
        self.write(_frame(_GOAWAY, 0, 0, struct.pack(">II", 0, 0x1)))
        if self.transport is not None:
            self.transport.close()
        self._close(why)

    def _close(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        for stream in list(self.streams.values()):
            stream.finish(_error(grpc.StatusCode.UNAVAILABLE, why))
        self._wake_senders()
        self._wake_slots()
        self._on_close(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self._close("the channel was closed")


class _Call:
    """What grpc.aio's calls offer the relay: ``cancel()``; awaiting (unary) or ``read()`` (stream)."""

    def __init__(
        self,
        channel: H2Channel,
        path: bytes,
        message: bytes,
        deserialize: Callable[[bytes], Any],
        timeout: float | None,
        metadata: Sequence[tuple[str, str]],
    ) -> None:
        self._channel = channel
        self._args = (path, message, metadata, timeout)
        self._deserialize = deserialize
        self._stream: _Stream | None = None
        self._cancelled = False
        self._eof = False

    async def _started(self) -> _Stream:
        if self._stream is None:
            if self._cancelled:
                raise asyncio.CancelledError
            path, message, metadata, timeout = self._args
            self._stream = await self._channel._open(path, message, metadata, timeout)
            if self.cancelled():  # cancel() came while the stream was being opened
                self._stream.cancel()
        return self._stream

    def cancel(self) -> bool:
        if self._cancelled or (self._stream is not None and self._stream.done):
            return False
        self._cancelled = True
        if self._stream is not None:
            self._stream.cancel()
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    async def _next(self) -> bytes | None:
        try:
            stream = await self._started()
            return await stream.next_message()
        except asyncio.CancelledError:
            self.cancel()  # the caller's task was cancelled: so is the call
            raise


class UnaryUnaryCall(_Call):
    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        message = await self._next()
        if message is None:
            raise _error(grpc.StatusCode.INTERNAL, "the server sent no response message")
        stream = self._stream
        assert stream is not None
        try:
            await stream.ended()  # the trailers carry the status: a message is not a success yet
        except asyncio.CancelledError:
            self.cancel()
            raise
        if stream.cancelled:
            raise asyncio.CancelledError
        if stream.error is not None:
            raise stream.error
        return self._deserialize(message)


class UnaryStreamCall(_Call):
    async def read(self) -> Any:
        """The next message, or ``grpc.aio.EOF`` once the stream ended OK."""
        if self._eof:
            return grpc.aio.EOF
        message = await self._next()
        if message is None:
            self._eof = True
            return grpc.aio.EOF
        return self._deserialize(message)

    def read_ready(self) -> list[Any]:
        """The messages already received and not read yet, without waiting (none before the first ``read()``);
        lets a relay send together what arrived together."""
        stream = self._stream
        if stream is None or not stream.messages:
            return []
        out = []
        while stream.messages:
            message = stream.messages.popleft()
            stream.queued -= len(message)
            out.append(self._deserialize(message))
        stream.return_window()
        return out

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        stream = await self._started()
        await stream.ended()
        return grpc.aio.Metadata(*stream.trailers)


class _Method:
    def __init__(
        self, channel: H2Channel, path: str, serialize: Callable[[Any], bytes], deserialize: Callable[[bytes], Any]
    ) -> None:
        self._channel = channel
        self._path = path.encode()
        self._serialize = serialize
        self._deserialize = deserialize

    def _args(self, request: Any, timeout: float | None, metadata: Any) -> tuple[Any, ...]:
        pairs = [_outgoing(str(k), v) for k, v in (metadata or ())]
        return self._channel, self._path, self._serialize(request), self._deserialize, timeout, pairs


class _UnaryUnary(_Method):
    def __call__(self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any) -> Any:
        return UnaryUnaryCall(*self._args(request, timeout, metadata))


class _UnaryStream(_Method):
    def __call__(self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any) -> Any:
        return UnaryStreamCall(*self._args(request, timeout, metadata))


def _outgoing(key: str, value: str | bytes) -> tuple[str, str]:
    """A metadata entry as sent: lower-case key; binary values (keys ending in ``-bin``) base64 without padding."""
    key = key.lower()
    if isinstance(value, bytes):
        return key, base64.b64encode(value).rstrip(b"=").decode()
    return key, value


def _identity(data: Any) -> Any:
    return data


class H2Channel:
    """A channel to ``host:port`` that generated stubs accept (``unary_unary`` and ``unary_stream``).

    One HTTP/2 connection at a time, opened on the first call and again after it broke or the server sent
    GOAWAY; a call that finds no server fails ``UNAVAILABLE`` at once (the next call tries again).
    """

    def __init__(self, addr: str, *, max_message: int, connect_timeout_s: float = 5.0) -> None:
        host, _, port = addr.rpartition(":")
        self._host = host.strip("[]") or "127.0.0.1"
        self._port = int(port)
        self._authority = addr.encode()
        self._max_message = max_message
        self._connect_timeout_s = connect_timeout_s
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._all: set[_Connection] = set()

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **_: Any,
    ) -> Any:
        return _UnaryUnary(self, method, request_serializer or _identity, response_deserializer or _identity)

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **_: Any,
    ) -> Any:
        return _UnaryStream(self, method, request_serializer or _identity, response_deserializer or _identity)

    async def _open(
        self, path: bytes, message: bytes, metadata: Sequence[tuple[str, str]], timeout: float | None
    ) -> _Stream:
        if len(message) > self._max_message:
            raise _error(grpc.StatusCode.RESOURCE_EXHAUSTED, f"request message of {len(message)} bytes")
        conn = await self._connection(timeout)
        return await conn.open(path, message, metadata, timeout, self._max_message)

    async def _connection(self, timeout: float | None) -> _Connection:
        conn = self._conn
        if conn is not None and conn.usable:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            wait = self._connect_timeout_s if timeout is None else min(timeout, self._connect_timeout_s)
            return await asyncio.wait_for(asyncio.shield(connecting), wait)
        except TimeoutError as exc:
            raise _error(grpc.StatusCode.UNAVAILABLE, "timed out connecting to the server") from exc
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(self._authority, self._forget), self._host, self._port
            )
        except OSError as exc:
            raise _error(grpc.StatusCode.UNAVAILABLE, f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        self._all.add(conn)
        self._conn = conn
        return conn

    def _forget(self, conn: _Connection) -> None:
        self._all.discard(conn)
        if self._conn is conn:
            self._conn = None

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        for conn in list(self._all):
            conn.close()
        self._conn = None

    async def __aenter__(self) -> H2Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
