"""The server: listening sockets, the registered methods, and a graceful stop.

Its surface is the part of ``grpc.aio.Server`` that generated code and our services use, so
``add_XServicer_to_server(servicer, server)`` registers any generated servicer here unchanged (the generated
function calls ``add_generic_rpc_handlers`` and ``add_registered_method_handlers`` with the method handlers, which
carry the request deserializers and reply serializers); ``add_insecure_port``, ``start``, ``stop(grace)`` and
``wait_for_termination`` behave like grpc.aio's. Interceptors are not supported: ``on_call(context)`` runs in each
call's task before its handler (where a request id is restored into a context variable, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from omniroute_core.grpc_h2._context import ServicerContext
from omniroute_core.grpc_h2._server_conn import ServerConnection

__all__ = ["H2Server"]


class _CallDetails(NamedTuple):  # what a generic handler's service() reads (grpc.HandlerCallDetails)
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class H2Server:
    """A gRPC server (the four kinds of method) whose calls run in the event loop.

    ``max_receive`` / ``max_send``: the largest request and reply message (larger ones end the call
    ``RESOURCE_EXHAUSTED``); ``max_streams``: concurrent calls per connection (advertised; more are refused).
    """

    def __init__(
        self,
        *,
        max_receive: int,
        max_send: int | None = None,
        max_streams: int = 10_000,
        on_call: Callable[[ServicerContext], None] | None = None,
    ) -> None:
        self.max_receive = max_receive
        self.max_send = max_receive if max_send is None else max_send
        self.max_streams = max_streams
        self.on_call = on_call
        self.connections: set[ServerConnection] = set()
        self._methods: dict[bytes, Any] = {}  # path → grpc.RpcMethodHandler
        self._generic: list[Any] = []
        self._sockets: list[socket.socket] = []
        self._listeners: list[asyncio.Server] = []
        self._stopping = False
        self._idle: asyncio.Future[None] | None = None  # done once stopping and no connection is left
        self._terminated: asyncio.Event | None = None

    # -- registration ----------------------------------------------------------------------------------------

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[Any]) -> None:
        self._generic.extend(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Mapping[str, Any]) -> None:
        for name, handler in method_handlers.items():
            self._methods[f"/{service_name}/{name}".encode()] = handler

    def lookup(self, path: bytes) -> Any:
        """The method handler of ``path`` (``/package.Service/Method``), or None."""
        handler = self._methods.get(path)
        if handler is not None or not path:
            return handler
        details = _CallDetails(path.decode("latin-1"), ())
        for generic in self._generic:
            handler = generic.service(details)
            if handler is not None:
                self._methods[path] = handler  # found ones only: unknown paths must not grow the map
                return handler
        return None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def add_insecure_port(self, address: str) -> int:
        """Bind ``host:port`` (``[::]:port`` for IPv6; port 0 picks one) now; returns the port. Listening
        starts with ``start()``."""
        host, _, port = address.rpartition(":")
        infos = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(addr)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._sockets.append(sock)
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._terminated is None:
            self._terminated = asyncio.Event()
        for sock in self._sockets:
            self._listeners.append(await loop.create_server(lambda: ServerConnection(self), sock=sock, backlog=1024))

    async def stop(self, grace: float | None) -> None:
        """Stop listening and send GOAWAY on every connection: calls already received run on for up to
        ``grace`` seconds, new ones are refused; then what still runs is cancelled (``UNAVAILABLE``) and the
        connections close."""
        if self._stopping:
            await self.wait_for_termination()
            return
        self._stopping = True
        for listener in self._listeners:
            listener.close()
        if not self._listeners:  # never started: the bound sockets are ours to close
            for sock in self._sockets:
                sock.close()
        self._idle = asyncio.get_running_loop().create_future()
        for conn in list(self.connections):
            conn.go_away()
        self._check_idle()
        if grace:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._idle), grace)
        tasks = [task for conn in list(self.connections) for task in conn.stop_streams()]
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)  # their trailers are written as they end
        for conn in list(self.connections):
            conn.shutdown()
        if self._terminated is not None:
            self._terminated.set()

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        """True once ``stop()`` finished; False when ``timeout`` seconds passed first."""
        if self._terminated is None:
            self._terminated = asyncio.Event()
        try:
            await asyncio.wait_for(self._terminated.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def forget(self, conn: ServerConnection) -> None:
        self.connections.discard(conn)
        self._check_idle()

    def _check_idle(self) -> None:
        if self._idle is not None and not self._idle.done() and not self.connections:
            self._idle.set_result(None)
