"""The handler's ``context``: the part of ``grpc.aio.ServicerContext`` our servicers and grpc's health servicer use.

Covered: request metadata (``invocation_metadata``), trailing metadata, ``set_code`` / ``set_details`` /
``abort`` (raises ``grpc.aio.AbortError`` like grpc.aio, so code that catches it behaves alike), ``write`` for a
server-streaming handler written as a coroutine (grpc's aio health ``Watch``), ``send_initial_metadata``,
``time_remaining``, ``cancelled``, ``done``, ``peer`` and ``read`` (the next request of a client-streaming or
bidirectional call, ``grpc.aio.EOF`` at the end; it shares the position of the handler's request iterator).
Not covered: compression and auth contexts (no compression, no TLS on this hop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc

from omniroute_core.grpc_h2._wire import incoming_metadata

if TYPE_CHECKING:
    from omniroute_core.grpc_h2._server_stream import ServerStream

__all__ = ["ServicerContext"]

Metadata = tuple[tuple[str, str | bytes], ...]
# request headers that are HTTP/2 or gRPC transport, not the caller's metadata
_TRANSPORT = frozenset((b"content-type", b"te", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding"))


class ServicerContext:
    """One call's context. ``code`` stays None until the handler sets one (OK is then the outcome)."""

    __slots__ = ("_details", "_metadata", "_stream", "status")

    def __init__(self, stream: ServerStream) -> None:
        self._stream = stream  # one way: the stream keeps no reference back, so a call leaves no cycle for the GC
        self._metadata: Metadata | None = None
        self._details = ""
        self.status: grpc.StatusCode | None = None

    def invocation_metadata(self) -> Metadata:
        """The caller's metadata as ``(key, value)`` pairs; ``-bin`` values as bytes."""
        if self._metadata is None:
            self._metadata = tuple(
                incoming_metadata(k, v)
                for k, v in self._stream.request_headers
                if not k.startswith(b":") and k not in _TRANSPORT
            )
        return self._metadata

    def metadata_value(self, key: str) -> str | None:
        """The caller's first text entry under ``key`` (lower case), or None, without building all of
        :meth:`invocation_metadata`: what the per-call request-id hook needs, one key of a few."""
        wanted = key.encode("latin-1")
        if wanted in _TRANSPORT or wanted.startswith(b":"):  # what invocation_metadata() leaves out too
            return None
        for name, value in self._stream.request_headers:
            if name == wanted:
                return value.decode("latin-1")
        return None

    def set_trailing_metadata(self, trailing_metadata: Iterable[tuple[str, str | bytes]]) -> None:
        self._stream.trailers = tuple(trailing_metadata)

    def trailing_metadata(self) -> Metadata:
        return self._stream.trailers

    def set_code(self, code: grpc.StatusCode) -> None:
        self.status = code

    def code(self) -> grpc.StatusCode | None:
        return self.status

    def set_details(self, details: str) -> None:
        self._details = details

    def details(self) -> str:
        return self._details

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Iterable[tuple[str, str | bytes]] = ()
    ) -> NoReturn:
        """End the call with ``code``: raises ``grpc.aio.AbortError``, which the server turns into the status."""
        if code == grpc.StatusCode.OK:
            raise ValueError("abort() needs a status other than OK")
        self.status, self._details = code, details
        if trailing_metadata:
            self._stream.trailers = tuple(trailing_metadata)
        raise grpc.aio.AbortError(details)

    async def write(self, message: Any) -> None:
        """One reply message of a server-streaming call (for handlers that write instead of yielding)."""
        await self._stream.send_reply(message)

    async def read(self) -> Any:
        """The next request message of a call whose requests stream; ``grpc.aio.EOF`` once they ended."""
        return await self._stream.read()

    async def send_initial_metadata(self, initial_metadata: Iterable[tuple[str, str | bytes]]) -> None:
        self._stream.initial_metadata(tuple(initial_metadata))

    def time_remaining(self) -> float | None:
        deadline = self._stream.deadline
        return None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())

    def cancelled(self) -> bool:
        return self._stream.cancelled

    def done(self) -> bool:
        return self._stream.done

    def peer(self) -> str:
        return self._stream.conn.peer

    def disable_next_message_compression(self) -> None:
        pass  # nothing is compressed
