"""The channel: one connection at a time to the server, opened on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from omniroute_core.grpc_h2._calls import UnaryStreamMethod, UnaryUnaryMethod
from omniroute_core.grpc_h2._connection import Connection
from omniroute_core.grpc_h2._stream import Stream
from omniroute_core.grpc_h2._stream_calls import StreamStreamMethod, StreamUnaryMethod
from omniroute_core.grpc_h2._wire import (
    identity,
    rpc_error,
)

__all__ = ["H2Channel"]


class H2Channel:
    """A channel to ``host:port`` that generated stubs accept (the four kinds of method).

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
        self._conn: Connection | None = None
        self._connecting: asyncio.Future[Connection] | None = None
        self._all: set[Connection] = set()

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **_: Any,
    ) -> Any:
        return UnaryUnaryMethod(self, method, request_serializer or identity, response_deserializer or identity)

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **_: Any,
    ) -> Any:
        return UnaryStreamMethod(self, method, request_serializer or identity, response_deserializer or identity)

    def stream_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **_: Any,
    ) -> Any:
        return StreamUnaryMethod(self, method, request_serializer or identity, response_deserializer or identity)

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **_: Any,
    ) -> Any:
        return StreamStreamMethod(self, method, request_serializer or identity, response_deserializer or identity)

    async def _open(
        self, path: bytes, message: bytes, metadata: Sequence[tuple[str, str]], timeout: float | None
    ) -> Stream:
        if len(message) > self._max_message:
            raise rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, f"request message of {len(message)} bytes")
        conn = await self._connection(timeout)
        return await conn.open(path, message, metadata, timeout, self._max_message)

    async def _open_stream(self, path: bytes, metadata: Sequence[tuple[str, str]], timeout: float | None) -> Stream:
        conn = await self._connection(timeout)
        return await conn.open_stream(path, metadata, timeout, self._max_message)

    async def _connection(self, timeout: float | None) -> Connection:
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
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "timed out connecting to the server") from exc
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: Connection(self._authority, self._forget), self._host, self._port
            )
        except OSError as exc:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        self._all.add(conn)
        self._conn = conn
        return conn

    def _forget(self, conn: Connection) -> None:
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
