"""One call on the server: the request arriving, the handler's task, and the reply within the peer's windows.

For a unary-request method the handler starts once the client has ended its side (one request message); a
method whose requests stream starts at once (``RequestStream`` in ``_server_requests``). The handler runs as its
own task. The task is cancelled when the client resets the stream
(RST_STREAM: a cancelled call), when the connection is lost, at the deadline the client sent as ``grpc-timeout``
(the call then ends ``DEADLINE_EXCEEDED``) and when a stopping server's grace runs out (``UNAVAILABLE``). A
stream handler's generator is closed as its task ends, so what it holds (an upstream response) is released
then, not when the garbage collector finds it. The reply's head goes with the first message; the trailers carry
the status, ``grpc-message`` and the trailing metadata; a call that ends before any message gets a
trailers-only reply.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import TYPE_CHECKING, Any

import grpc

from omniroute_core.grpc_h2._context import ServicerContext
from omniroute_core.grpc_h2._hpack import literal_field
from omniroute_core.grpc_h2._wire import (
    FLOW_CONTROL_ERROR,
    STREAM_WINDOW,
    WINDOW,
    H2Error,
    frame,
    grpc_message,
    outgoing_metadata,
)

if TYPE_CHECKING:
    from omniroute_core.grpc_h2._server_conn import ServerConnection

__all__ = ["CallFailed", "ServerStream"]

log = logging.getLogger("omniroute_core.grpc_h2")


class CallFailed(Exception):
    """Ends the call with ``code`` and ``details`` (raised within the call's task)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class ServerStream:
    """One call: its request, handler task, context and our send window on it."""

    def __init__(
        self,
        conn: ServerConnection,
        stream_id: int,
        handler: Any,
        request_headers: list[tuple[bytes, bytes]],
        timeout: float | None,
    ) -> None:
        self.conn = conn
        self.id = stream_id
        self.handler = handler  # a grpc.RpcMethodHandler
        self.request_headers = request_headers
        self.send_window = conn.peer_initial_window
        self.done = False  # the reply ended, or the stream was reset, or the connection is gone
        self.cancelled = False  # by the client (RST_STREAM, disconnect)
        self.expired = False
        self.half_closed = False  # the client ended its side
        self.trailers: tuple[tuple[str, str | bytes], ...] = ()  # the context's trailing metadata
        self.task: asyncio.Task[None] | None = None
        self.deadline: float | None = None
        self._body = bytearray()
        self._unacked = 0  # request bytes not yet returned to the client's window on this stream
        self._head: list[bytes] = []  # initial metadata, sent with the reply's head
        self._head_sent = False
        # server-streaming and bidirectional calls: their first message is flushed at once
        self.streams_replies = handler.unary_stream is not None or handler.stream_stream is not None
        self._timer: asyncio.TimerHandle | None = None
        if timeout is not None:
            loop = asyncio.get_running_loop()
            self.deadline = loop.time() + timeout
            self._timer = loop.call_later(timeout, self._expire)

    # -- the request (called by the connection) --------------------------------------------------------------

    def on_data(self, data: bytes, end: bool) -> None:
        body = self._body
        body += data
        if len(body) >= 5:  # checked on every frame: bytes past the one message must not pile up either
            compressed, size = struct.unpack_from(">BI", body)
            limit = self.conn.server.max_receive
            if compressed:
                self.finish(grpc.StatusCode.UNIMPLEMENTED, "compressed messages are not accepted")
                return
            if size > limit:
                details = f"received message larger than max ({size} vs. {limit})"
                self.finish(grpc.StatusCode.RESOURCE_EXHAUSTED, details)
                return
            if len(body) > 5 + size:
                self.finish(grpc.StatusCode.INTERNAL, "expected exactly one request message")
                return
        self._unacked += len(data)
        if self._unacked > STREAM_WINDOW:
            raise H2Error(FLOW_CONTROL_ERROR, "DATA past the stream's window")
        if end:
            self.start()
        elif self._unacked >= STREAM_WINDOW // 2:
            self.conn.write(frame(WINDOW, 0, self.id, struct.pack(">I", self._unacked)))
            self._unacked = 0

    def start(self) -> None:
        """The client ended its side: run the handler on its one request message."""
        self.half_closed = True
        body, self._body = self._body, bytearray()
        if len(body) < 5 or len(body) != 5 + int.from_bytes(body[1:5], "big"):
            self.finish(grpc.StatusCode.INTERNAL, "expected exactly one request message")
            return
        # a view, not body[5:]: the message is copied once (into bytes), not twice
        self.task = asyncio.get_running_loop().create_task(self._run(bytes(memoryview(body)[5:])))
        self.task.add_done_callback(self._task_ended)

    # -- the handler -----------------------------------------------------------------------------------------

    async def _run(self, message: Any) -> None:
        # the context is the task's alone: were it also an attribute here, each call would leave a reference
        # cycle (stream <-> context) that only the cyclic GC frees, a collection every few dozen calls
        handler, context = self.handler, ServicerContext(self)
        try:
            hook = self.conn.server.on_call
            if hook is not None:
                hook(context)
            request = self.request(message)
            unary = handler.unary_unary or handler.stream_unary
            if unary is not None:
                reply = await unary(request, context)
                if context.status in (None, grpc.StatusCode.OK):
                    if reply is None:
                        raise CallFailed(grpc.StatusCode.INTERNAL, "the handler returned no reply")
                    await self.send_reply(reply)
            else:
                await self._stream_replies((handler.unary_stream or handler.stream_stream)(request, context))
            self.finish(context.status or grpc.StatusCode.OK, context.details())
        except grpc.aio.AbortError:
            self.finish(context.status or grpc.StatusCode.UNKNOWN, context.details())
        except CallFailed as failed:  # a name of its own per clause: mypyc types each name once
            self.finish(failed.code, failed.details)
        except Exception as exc:
            if context.status not in (None, grpc.StatusCode.OK):
                self.finish(context.status, context.details())
                return
            path = dict(self.request_headers).get(b":path", b"").decode("latin-1")
            log.exception("unexpected error in the gRPC handler", extra={"method": path})
            self.finish(grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc)}: {exc}")  # what grpc.aio answers

    def request(self, message: Any) -> Any:
        """The handler's request argument: here the one request message, deserialized."""
        deserialize = self.handler.request_deserializer
        try:
            return message if deserialize is None else deserialize(message)
        except Exception as exc:
            raise CallFailed(grpc.StatusCode.INTERNAL, f"cannot deserialize the request: {exc}") from exc

    async def read(self) -> Any:
        raise RuntimeError("read() is for calls whose requests stream (client-streaming or bidirectional)")

    async def _stream_replies(self, result: Any) -> None:
        if not hasattr(result, "__aiter__"):
            await result  # a coroutine that writes through context.write()
            return
        try:
            async for reply in result:
                await self.send_reply(reply)
        finally:
            if hasattr(result, "aclose"):
                await result.aclose()  # now, whether the call ended, failed or was cancelled

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if self.done:
            return
        if self.expired:
            self.finish(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        else:  # cancelled by a stopping server (a cancelled call is done already)
            self.finish(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")

    # -- the reply -------------------------------------------------------------------------------------------

    async def send_reply(self, message: Any) -> None:
        serialize = self.handler.response_serializer
        data = message if serialize is None else serialize(message)
        limit = self.conn.server.max_send
        if len(data) > limit:
            details = f"sent message larger than max ({len(data)} vs. {limit})"
            raise CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        if self.done:
            raise asyncio.CancelledError  # reset meanwhile: the task is being cancelled
        first = not self._head_sent
        if first:
            self._head_sent = True
            self.conn.write_headers(self.id, self.conn.header_block(self._response_head()))
        if not await self.conn.send_data(self, struct.pack(">BI", 0, len(data)) + data, end_stream=False):
            raise asyncio.CancelledError
        if first and self.streams_replies:
            self.conn.flush()  # a stream's first message (its time to first byte) leaves now; a unary reply
            # leaves with its trailers, written in this same step

    def initial_metadata(self, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        if self._head_sent:
            raise RuntimeError("the initial metadata was sent already")
        self._head = [_field(k, v) for k, v in metadata]

    def _response_head(self) -> list[bytes]:
        # :status 200 is static-table entry 8
        return [b"\x88", self.conn.encoder.cached(b"content-type", b"application/grpc"), *self._head]

    def finish(self, code: grpc.StatusCode, details: str = "") -> None:
        """Send the trailers (a trailers-only reply when no message was sent) and close the stream."""
        if self.done:
            return
        conn = self.conn
        fields = [] if self._head_sent else self._response_head()
        fields.append(conn.encoder.cached(b"grpc-status", b"%d" % code.value[0]))
        if details:
            fields.append(literal_field(b"grpc-message", grpc_message(details)))
        fields += [_field(k, v) for k, v in self.trailers]
        conn.end_stream(self.id, fields, self.half_closed)
        self._close()

    # -- endings from outside --------------------------------------------------------------------------------

    def abandon(self) -> None:
        """The client reset the stream or went away: nothing more is sent; the handler is cancelled."""
        self.cancelled = True
        self._close()
        if self.task is not None:
            self.task.cancel()

    def stop(self) -> None:
        """A stopping server's grace ran out."""
        if self.task is not None:
            self.task.cancel()
        else:
            self.finish(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")

    def _expire(self) -> None:
        self.expired = True
        if self.task is not None:
            self.task.cancel()
        else:
            self.finish(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")

    def _close(self) -> None:
        if self.done:
            return
        self.done = True
        if self._timer is not None:
            self._timer.cancel()
        self.conn.closed_stream(self)


def _field(key: str, value: str | bytes) -> bytes:
    name, text = outgoing_metadata(key, value)
    return literal_field(name.encode(), text.encode())
