"""The channel: connections to the server's addresses, opened on demand (``_balancer``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from omniroute_core.grpc_h2._balancer import Balancer, Resolver
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

    One HTTP/2 connection per address of ``host`` (``_balancer``: a headless Service's pods; the calls go
    round-robin; ``resolver`` replaces the system's lookup, ``resolve_interval_s`` is how often it is asked
    again), opened on demand and again after it broke or the server sent GOAWAY; a call that finds no server
    fails ``UNAVAILABLE`` at once (the next call tries again).
    """

    def __init__(
        self,
        addr: str,
        *,
        max_message: int,
        connect_timeout_s: float = 5.0,
        resolver: Resolver | None = None,
        resolve_interval_s: float = 30.0,
    ) -> None:
        host, _, port = addr.rpartition(":")
        self._max_message = max_message
        self._conn: Connection | None = None
        self._balancer = Balancer(
            host.strip("[]") or "127.0.0.1",
            int(port),
            addr.encode(),
            connect_timeout_s=connect_timeout_s,
            resolver=resolver,
            resolve_interval_s=resolve_interval_s,
            pin=self._pin,
        )

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
        conn = self._conn  # the only address's connection, pinned by the balancer while it works
        if conn is not None and conn.usable:
            return conn
        return await self._balancer.connection(timeout)

    def _pin(self, conn: Connection | None) -> None:
        self._conn = conn

    async def close(self) -> None:
        self._balancer.close()

    async def __aenter__(self) -> H2Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
