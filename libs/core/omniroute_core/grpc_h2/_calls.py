"""The call objects, with the surface of grpc.aio's calls that the relay uses, and the multicallables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc

from omniroute_core.grpc_h2._connection import NotProcessed
from omniroute_core.grpc_h2._stream import Stream
from omniroute_core.grpc_h2._wire import (
    outgoing_metadata,
    rpc_error,
)

if TYPE_CHECKING:
    from omniroute_core.grpc_h2._channel import H2Channel

__all__ = ["UnaryStreamCall", "UnaryStreamMethod", "UnaryUnaryCall", "UnaryUnaryMethod"]


class _Call:
    """What grpc.aio's calls offer the relay: ``cancel()``; awaiting (unary) or ``read()`` (stream)."""

    _retried = False  # a call the server never processed is sent again once

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
        self._stream: Stream | None = None
        self._cancelled = False
        self._eof = False

    async def _started(self) -> Stream:
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

    async def code(self) -> grpc.StatusCode:
        """The call's status once it ended (waits for it)."""
        error = await self._outcome()
        return grpc.StatusCode.OK if error is None else error.code()

    async def details(self) -> str:
        error = await self._outcome()
        return "" if error is None else error.details() or ""

    async def _outcome(self) -> grpc.aio.AioRpcError | None:
        try:
            stream = await self._started()
            await stream.ended()
        except grpc.aio.AioRpcError as exc:
            return exc
        except asyncio.CancelledError:
            if not self._cancelled:
                raise
            return rpc_error(grpc.StatusCode.CANCELLED, "Locally cancelled")
        if stream.cancelled:
            return rpc_error(grpc.StatusCode.CANCELLED, "Locally cancelled")
        return cast(grpc.aio.AioRpcError | None, stream.error)

    async def _next(self) -> bytes | None:
        try:
            stream = await self._started()
            try:
                return await stream.next_message()
            except NotProcessed:
                if stream.headers_seen or self._retried:
                    raise
            # the server never saw the call (it raced a GOAWAY, or was refused): once more, on another connection,
            # with the time left of its deadline
            self._retried = True
            self._stream = None
            deadline = stream._deadline
            if deadline is not None:
                path, message, metadata, _ = self._args
                left = max(0.001, deadline.when() - asyncio.get_running_loop().time())
                self._args = (path, message, metadata, left)
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
            raise rpc_error(grpc.StatusCode.INTERNAL, "the server sent no response message")
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

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Any]:
        try:
            while (message := await self.read()) is not grpc.aio.EOF:
                yield message
        finally:
            self.cancel()  # nothing once the call ended; a consumer that stopped early (closed) ends it

    def read_ready(self) -> list[Any]:
        """The messages already received and not read yet, without waiting (none before the first ``read()``);
        lets a relay send together what arrived together."""
        stream = self._stream
        if stream is None or not stream.messages:
            return []
        out = []
        while stream.messages:
            message = stream.messages.popleft()
            stream.queued -= 5 + len(message)
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
        pairs = [outgoing_metadata(str(k), v) for k, v in (metadata or ())]
        return self._channel, self._path, self._serialize(request), self._deserialize, timeout, pairs


class UnaryUnaryMethod(_Method):
    def __call__(self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any) -> Any:
        return UnaryUnaryCall(*self._args(request, timeout, metadata))


class UnaryStreamMethod(_Method):
    def __call__(self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any) -> Any:
        return UnaryStreamCall(*self._args(request, timeout, metadata))
