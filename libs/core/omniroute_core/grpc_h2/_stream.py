"""One call's HTTP/2 stream: the messages received, its final status and our send window on it."""

from __future__ import annotations

import asyncio
import collections
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

import grpc

from omniroute_core.grpc_h2._wire import (
    CANCEL,
    CODES,
    FLOW_CONTROL_ERROR,
    HTTP_CODES,
    QUEUED_LIMIT,
    RST,
    STREAM_WINDOW,
    WINDOW,
    H2Error,
    MessageError,
    frame,
    incoming_metadata,
    rpc_error,
    take_messages,
)

if TYPE_CHECKING:
    from omniroute_core.grpc_h2._connection import Connection

__all__ = ["Stream"]


class Stream:
    """One call's HTTP/2 stream: received messages, the final status, and our send window on it."""

    def __init__(self, conn: Connection, stream_id: int, max_message: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.max_message = max_message
        self.send_window = conn.peer_initial_window
        self.messages: collections.deque[bytes] = collections.deque()
        self.queued = 0  # bytes of complete messages not read yet (with their 5-byte prefixes)
        self.unacked = 0  # bytes received and not yet returned to the server's window
        self.partial = bytearray()
        self.headers_seen = False
        self.error: Exception | None = None
        self.trailers: list[tuple[str, str | bytes]] = []
        self.done = False
        self.cancelled = False
        self._waiter: asyncio.Future[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.on_finish: Callable[[], None] | None = None  # a streaming request's writer stops then

    # -- the connection's side ---------------------------------------------------------------------------------

    def on_headers(self, headers: list[tuple[bytes, bytes]], end: bool) -> None:
        fields = dict(headers)
        if not self.headers_seen and not end:
            self.headers_seen = True
            self._check_response(fields, ended=False)
            return
        self.headers_seen = True
        if not end:  # headers after the response headers that do not end the stream: not gRPC
            self.fail(rpc_error(grpc.StatusCode.INTERNAL, "unexpected HEADERS frame"), reset=True)
            return
        if b":status" in fields and not self._check_response(fields, ended=True):
            return
        code = CODES.get(int(fields.get(b"grpc-status", b"2") or 2), grpc.StatusCode.UNKNOWN)
        details = unquote(fields.get(b"grpc-message", b"").decode("latin-1"))
        self.trailers = [
            incoming_metadata(k, v) for k, v in headers if not k.startswith(b":") and not k.startswith(b"grpc-")
        ]
        if self.partial:
            code, details = grpc.StatusCode.INTERNAL, "the stream ended inside a message"
        self.finish(None if code == grpc.StatusCode.OK else rpc_error(code, details, self.trailers))

    def _check_response(self, fields: dict[bytes, bytes], *, ended: bool) -> bool:
        """A gRPC reply is HTTP 200 with a gRPC content type; anything else fails the call (and resets the
        stream unless the server already ended it)."""
        status = fields.get(b":status", b"")
        if status != b"200":
            code = HTTP_CODES.get(int(status) if status.isdigit() else 0, grpc.StatusCode.UNKNOWN)
            self.fail(rpc_error(code, f"HTTP status {status.decode('latin-1')} from the server"), reset=not ended)
            return False
        if not fields.get(b"content-type", b"").startswith(b"application/grpc"):
            self.fail(rpc_error(grpc.StatusCode.UNKNOWN, "the server's reply is not gRPC"), reset=not ended)
            return False
        return True

    def on_data(self, data: bytes) -> None:
        self.unacked += len(data)
        if self.unacked > STREAM_WINDOW:
            raise H2Error(FLOW_CONTROL_ERROR, "DATA past the stream's window")
        buf = self.partial
        buf += data
        if len(buf) >= 5:
            try:
                self.queued += take_messages(buf, self.max_message, self.messages)
            except MessageError as exc:
                self.fail(rpc_error(exc.code, exc.details), reset=True)
                return
        self.return_window()
        self._wake()

    def return_window(self) -> None:
        if self.unacked >= STREAM_WINDOW // 2 and self.queued <= QUEUED_LIMIT and not self.done:
            self.conn.write(frame(WINDOW, 0, self.id, struct.pack(">I", self.unacked)))
            self.unacked = 0

    def fail(self, error: Exception, *, reset: bool = False) -> None:
        if not self.done and reset:
            self.conn.write(frame(RST, 0, self.id, struct.pack(">I", CANCEL)))
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
        if self.on_finish is not None:
            self.on_finish()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the call's side -------------------------------------------------------------------------------------

    def set_deadline(self, timeout: float) -> None:
        def expire() -> None:
            self.fail(rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), reset=True)

        self._deadline = asyncio.get_running_loop().call_later(timeout, expire)

    def cancel(self) -> None:
        if not self.done:
            self.cancelled = True
            self.fail(rpc_error(grpc.StatusCode.CANCELLED, "Locally cancelled"), reset=True)

    async def next_message(self) -> bytes | None:
        """The next message; None once the stream ended OK. Raises the call's error."""
        while True:
            if self.messages:
                message = self.messages.popleft()
                self.queued -= 5 + len(message)
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
