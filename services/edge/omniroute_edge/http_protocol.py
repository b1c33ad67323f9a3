"""uvicorn's httptools protocol with one change: writes made in the same event-loop step leave as one write.

uvicorn writes a response's status line and headers in one ``transport.write`` and each body part in another,
so a complete reply (head, then body) costs two ``send`` system calls and may reach the client as two TCP
segments (a client can wake up for each). The relay sends head and body back to back, within one step of the
loop; buffering writes until the step ends (``call_soon``) joins them without delaying anything by more than
the rest of that step; a complete reply leaves at once (``on_response_complete``), before the request's own
bookkeeping runs. Streamed events that arrive later still leave as they come.

It also tells the relay when a client leaves (:class:`DisconnectWatch`, in the scope's extensions): uvicorn only
reports that through ``receive()``, which would take a waiting task per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DISCONNECT_WATCH", "CoalescingTransport", "DisconnectWatch", "HttpProtocol"]

# the scope extension holding the connection's DisconnectWatch
DISCONNECT_WATCH = "omniroute.disconnect_watch"


class DisconnectWatch:
    """Callbacks to run when the client's connection is lost: how the relay learns that a client left without
    a task per request waiting in ``receive()`` for ``http.disconnect``. One per connection (pipelined requests
    share it); a callback added after the loss runs at once."""

    __slots__ = ("_callbacks", "lost")

    def __init__(self) -> None:
        self.lost = False
        self._callbacks: set[Callable[[], object]] = set()

    def add(self, callback: Callable[[], object]) -> None:
        if self.lost:
            callback()
        else:
            self._callbacks.add(callback)

    def discard(self, callback: Callable[[], object]) -> None:
        self._callbacks.discard(callback)

    def fire(self) -> None:
        self.lost = True
        callbacks, self._callbacks = self._callbacks, set()
        for callback in callbacks:
            callback()


class CoalescingTransport:
    """A transport whose ``write``s are joined until the current loop step ends. ``close`` flushes first;
    everything else is the wrapped transport's."""

    __slots__ = ("_loop", "_parts", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._parts:
            self._loop.call_soon(self._flush)
        self._parts.append(data)

    def flush(self) -> None:
        """What is queued leaves now (a complete reply: the client need not wait for the rest of the step)."""
        if self._parts:
            self._flush()

    def _flush(self) -> None:
        parts, self._parts = self._parts, []
        if parts and not self._transport.is_closing():
            self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """Pass as ``uvicorn.Config(http=HttpProtocol)``."""

    def connection_made(self, transport: Any) -> None:
        # the wrapper offers every Transport method uvicorn calls (write, close, the rest delegated)
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport, self.loop)))

    _watch: DisconnectWatch | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._watch is None:
            self._watch = DisconnectWatch()
        self.scope["extensions"] = cast(Any, {DISCONNECT_WATCH: self._watch})

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.fire()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        # the reply's last write was just made: it leaves before the request's task finishes its bookkeeping
        # (metrics, the overhead histograms, the cache and idempotency stores run after the client has it)
        transport: Any = self.transport  # typed as asyncio.Transport by uvicorn; ours since connection_made
        if isinstance(transport, CoalescingTransport):
            transport.flush()
        super().on_response_complete()
