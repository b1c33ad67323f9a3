"""Client-streaming and bidirectional calls: the request side, as grpc.aio's calls offer it.

A call is given a request iterator (async or not), which a task of the call consumes as the stream opens, or
none, and then the caller sends with ``await call.write(message)`` and ends with ``await call.done_writing()``
(the two styles do not mix). The call opens on its first use (a read, ``write``, awaiting it). Each request
is sent within the server's flow-control windows (a server that does not read slows the writer down); the end
of the iterator, or ``done_writing()``, ends our side of the stream (END_STREAM). When the call ends (its
trailers, a reset, the deadline, ``cancel()``) the iterator's task is cancelled and the iterator closed, so
what it holds (an upstream response) is released at once. An iterator that raises cancels the call, as
grpc.aio does. Replies: awaiting the call (client-streaming) or ``read()`` / ``async for`` (bidirectional).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from omniroute_core.grpc_h2._calls import UnaryStreamCall, UnaryUnaryCall, _Method
from omniroute_core.grpc_h2._stream import Stream
from omniroute_core.grpc_h2._wire import outgoing_metadata, rpc_error

if TYPE_CHECKING:
    from omniroute_core.grpc_h2._channel import H2Channel

__all__ = ["StreamStreamCall", "StreamStreamMethod", "StreamUnaryCall", "StreamUnaryMethod"]

log = logging.getLogger("omniroute_core.grpc_h2")
_FINISHED = "RPC already finished."
_HALF_CLOSED = 'RPC is half closed after calling "done_writing".'


class _Requests:
    """The request side of a call (mixed into the reply side's call class)."""

    _channel: H2Channel
    _args: tuple[bytes, bytes, Sequence[tuple[str, str]], float | None]
    _stream: Stream | None
    _cancelled: bool
    cancel: Callable[[], bool]  # the call class's

    def _setup(self, requests: Any, serialize: Callable[[Any], bytes]) -> None:
        self._requests = requests
        self._serialize = serialize
        self._opening: asyncio.Future[Stream] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # write() and done_writing() in the order they were called
        self._half_closed = False

    async def _started(self) -> Stream:
        if self._stream is not None:
            return self._stream
        if self._cancelled:
            raise asyncio.CancelledError
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        # shielded: a reader cancelled while the stream opens must not cancel the opening a writer waits for
        return await asyncio.shield(self._opening)

    async def _open(self) -> Stream:
        path, _, metadata, timeout = self._args
        stream = await self._channel._open_stream(path, metadata, timeout)
        self._stream = stream
        stream.on_finish = self._finished
        if self._cancelled:  # cancel() came while the stream was being opened
            stream.cancel()
        elif self._requests is not None:
            self._writer = asyncio.ensure_future(self._consume(stream, self._requests))
        return stream

    def _finished(self) -> None:
        """The stream ended: the iterator's task stops, a write waiting for window returns."""
        stream = self._stream
        if stream is not None:
            stream.conn.wake_senders()
        writer = self._writer
        if writer is not None and not writer.done() and writer is not asyncio.current_task():
            writer.cancel()

    async def _consume(self, stream: Stream, requests: Any) -> None:
        try:
            if hasattr(requests, "__aiter__"):
                async for request in requests:
                    if not await self._send(stream, request):
                        return
            else:
                for request in requests:
                    if not await self._send(stream, request):
                        return
            self._half_closed = True
            await stream.conn.send_data(stream, b"", end_stream=True)
        except Exception as exc:
            log.debug("the request iterator raised", exc_info=True)
            stream.fail(rpc_error(grpc.StatusCode.CANCELLED, f"the request iterator raised {exc!r}"), reset=True)
        finally:
            if hasattr(requests, "aclose"):
                with contextlib.suppress(Exception):
                    await requests.aclose()

    async def _send(self, stream: Stream, request: Any) -> bool:
        """One request message; False when the stream ended first."""
        data = self._serialize(request)
        if len(data) > stream.max_message:
            error = rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, f"request message of {len(data)} bytes")
            stream.fail(error, reset=True)
            return False
        return await stream.conn.send_data(stream, struct.pack(">BI", 0, len(data)) + data, end_stream=False)

    async def write(self, request: Any) -> None:
        """Send one request (the call was made without a request iterator); waits for the server's window.
        Raises the call's error when it ended meanwhile, ``asyncio.InvalidStateError`` after it ended."""
        if self._requests is not None:
            raise RuntimeError("write() is not allowed when the call was given a request iterator")
        try:
            stream = await self._started()
            async with self._writing:
                if stream.done:
                    raise asyncio.InvalidStateError(_FINISHED)
                if self._half_closed:
                    raise asyncio.InvalidStateError(_HALF_CLOSED)
                if await self._send(stream, request):
                    return
        except asyncio.CancelledError:
            self.cancel()
            raise
        if stream.cancelled:
            raise asyncio.CancelledError
        if stream.error is not None:
            raise stream.error
        raise asyncio.InvalidStateError(_FINISHED)

    async def done_writing(self) -> None:
        """End our side of the stream (idempotent; nothing once the call ended)."""
        if self._requests is not None:
            raise RuntimeError("done_writing() is not allowed when the call was given a request iterator")
        stream = await self._started()
        async with self._writing:
            if stream.done or self._half_closed:
                return
            self._half_closed = True
            await stream.conn.send_data(stream, b"", end_stream=True)


class StreamUnaryCall(_Requests, UnaryUnaryCall):
    """A client-streaming call: requests as above, the reply by awaiting the call."""


class StreamStreamCall(_Requests, UnaryStreamCall):
    """A bidirectional call: requests as above, replies by ``read()`` or ``async for``."""


class _StreamMethod(_Method):
    _kind: type[StreamUnaryCall] | type[StreamStreamCall]

    def __call__(
        self, request_iterator: Any = None, *, timeout: float | None = None, metadata: Any = None, **_: Any
    ) -> Any:
        pairs = [outgoing_metadata(str(k), v) for k, v in (metadata or ())]
        call = self._kind(self._channel, self._path, b"", self._deserialize, timeout, pairs)
        call._setup(request_iterator, self._serialize)
        return call


class StreamUnaryMethod(_StreamMethod):
    _kind = StreamUnaryCall


class StreamStreamMethod(_StreamMethod):
    _kind = StreamStreamCall
