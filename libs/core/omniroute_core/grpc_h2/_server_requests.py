"""A client-streaming or bidirectional call on the server: the requests arrive while the handler runs.

The handler's task starts with the request headers; its ``request_iterator`` (and ``context.read()``) yields
each message as its DATA frames complete it and ends when the client ends its side (END_STREAM, or trailers).
Flow control is the backpressure: the client's window on the stream is returned as the handler reads, and not
while more than ``QUEUED_LIMIT`` bytes of complete messages wait unread, so a client cannot make the server
hold more than that plus one window. A malformed or oversized message ends the call (its status, and the
handler cancelled); the handler may end the call before reading every request (the client is then told to send
no more with RST_STREAM(NO_ERROR) after the trailers). Deadlines, resets, disconnects and a stopping server
cancel the handler as for the other kinds of call (:mod:`._server_stream`).
"""

from __future__ import annotations

import asyncio
import collections
import struct
from typing import Any

import grpc

from omniroute_core.grpc_h2._server_stream import CallFailed, ServerStream
from omniroute_core.grpc_h2._wire import (
    FLOW_CONTROL_ERROR,
    QUEUED_LIMIT,
    STREAM_WINDOW,
    WINDOW,
    H2Error,
    MessageError,
    frame,
    take_messages,
)

__all__ = ["RequestStream"]


class RequestStream(ServerStream):
    """A call whose requests stream: messages queued as they arrive, read by the handler."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.requests: collections.deque[bytes] = collections.deque()
        self.queued = 0  # bytes of complete messages not read yet (with their 5-byte prefixes)
        self._waiter: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Run the handler now, on an iterator of the requests to come."""
        self.task = asyncio.get_running_loop().create_task(self._run(_Requests(self)))
        self.task.add_done_callback(self._task_ended)

    def request(self, message: Any) -> Any:
        return message  # the iterator

    # -- the requests (called by the connection) -------------------------------------------------------------

    def on_data(self, data: bytes, end: bool) -> None:
        self._unacked += len(data)
        if self._unacked > STREAM_WINDOW:
            raise H2Error(FLOW_CONTROL_ERROR, "DATA past the stream's window")
        body = self._body
        body += data
        if len(body) >= 5:
            try:
                self.queued += take_messages(body, self.conn.server.max_receive, self.requests)
            except MessageError as exc:
                self.fail(exc.code, exc.details)
                return
        if end:
            self.half_closed = True
            if body:
                self.fail(grpc.StatusCode.INTERNAL, "the requests ended inside a message")
                return
        self._return_window()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, code: grpc.StatusCode, details: str) -> None:
        """End the call from outside its task: the status now, then the handler cancelled."""
        self.finish(code, details)
        if self.task is not None:
            self.task.cancel()

    def _return_window(self) -> None:
        if self._unacked >= STREAM_WINDOW // 2 and self.queued <= QUEUED_LIMIT and not self.half_closed:
            if not self.done:
                self.conn.write(frame(WINDOW, 0, self.id, struct.pack(">I", self._unacked)))
            self._unacked = 0

    # -- the handler's side ----------------------------------------------------------------------------------

    async def read(self) -> Any:
        """The next request, deserialized; ``grpc.aio.EOF`` once the client ended its side."""
        while not self.requests:
            if self.half_closed or self.done:
                return grpc.aio.EOF
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        message = self.requests.popleft()
        self.queued -= 5 + len(message)
        self._return_window()
        deserialize = self.handler.request_deserializer
        try:
            return message if deserialize is None else deserialize(message)
        except Exception as exc:
            raise CallFailed(grpc.StatusCode.INTERNAL, f"cannot deserialize a request: {exc}") from exc


class _Requests:
    """The handler's ``request_iterator``."""

    __slots__ = ("_stream",)

    def __init__(self, stream: RequestStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> Any:
        message = await self._stream.read()
        if message is grpc.aio.EOF:
            raise StopAsyncIteration
        return message
