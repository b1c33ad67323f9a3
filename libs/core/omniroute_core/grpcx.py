"""gRPC helpers: a server with health checking and request-id propagation, and client channels.

Request ids cross gRPC as the ``x-request-id`` metadata entry. Clients pass it explicitly with
:func:`call_metadata` (a client interceptor would cost every call on the hot path); servers restore it into
:data:`omniroute_core.logging.REQUEST_ID` through :class:`RequestIdInterceptor`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from omniroute_core.grpc_h2 import H2Channel, H2Server, ServicerContext
from omniroute_core.logging import REQUEST_ID

__all__ = [
    "CHANNEL_OPTIONS",
    "UPSTREAM_TIMING_KEY",
    "ClientKind",
    "RequestIdInterceptor",
    "Server",
    "ServerKind",
    "call_metadata",
    "channel",
    "insecure_channel",
    "restore_request_id",
    "wait_healthy",
]

REQUEST_ID_KEY = "x-request-id"
# trailing metadata of Executor.ExecuteStream: a serialized omniroute.v1.UpstreamTiming (binary, hence "-bin")
UPSTREAM_TIMING_KEY = "omniroute-upstream-timing-bin"
MAX_MESSAGE = 64 * 1024 * 1024

CHANNEL_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # one channel carries many concurrent streams; don't cap them below our own queue limits
    ("grpc.max_concurrent_streams", 10_000),
    # a restarted sibling is used again within a second (gRPC's default backoff grows to two minutes)
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # calls spread over every address the name resolves to (a Kubernetes headless Service: one per replica), as
    # H2Channel does; the default pick_first would send them all to one replica
    ("grpc.lb_policy_name", "round_robin"),
    # subchannels of this channel only: gRPC's process-wide pool lets a new channel inherit another's subchannel
    # to the same address still backing off after a refused connect (a restarted server on a reused port, or a
    # test's), which fails the new channel's first calls UNAVAILABLE at once
    ("grpc.use_local_subchannel_pool", 1),
)


def call_metadata(request_id: str | None = None) -> tuple[tuple[str, str], ...]:
    """Metadata carrying the given (or current) request id, for a client call."""
    rid = request_id if request_id is not None else REQUEST_ID.get()
    return ((REQUEST_ID_KEY, rid),) if rid else ()


def insecure_channel(addr: str) -> grpc.aio.Channel:
    """A plaintext channel to a sibling service (inside the cluster network or loopback)."""
    return grpc.aio.insecure_channel(addr, options=CHANNEL_OPTIONS)


ClientKind = Literal["asyncio", "grpc"]


def channel(addr: str, kind: ClientKind) -> grpc.aio.Channel:
    """A channel to a sibling service: ``"asyncio"`` is :class:`omniroute_core.grpc_h2.H2Channel` (HTTP/2 in the
    event loop, no gRPC core threads; it offers what generated stubs use of a grpc.aio channel), ``"grpc"`` a
    stock grpc.aio channel (:func:`insecure_channel`)."""
    if kind == "grpc":
        return insecure_channel(addr)
    return cast(grpc.aio.Channel, H2Channel(addr, max_message=MAX_MESSAGE))


def _request_id(context: Any) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY:
            return str(value)
    return ""


def restore_request_id(context: ServicerContext) -> None:
    """The in-loop server's per-call hook: the caller's request id into :data:`REQUEST_ID` (in the call's task)."""
    REQUEST_ID.set(context.metadata_value(REQUEST_ID_KEY) or "")


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    """Sets the request-id context variable for the duration of each handler."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        # grpc's stubs type handlers as synchronous; under grpc.aio they are coroutines / async generators.
        handler: Any = await continuation(handler_call_details)
        if handler is None:
            return None
        des, ser = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: Any) -> Any:
                REQUEST_ID.set(_request_id(context))
                return await inner_uu(request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, des, ser)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                REQUEST_ID.set(_request_id(context))
                async for item in inner_us(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(unary_stream, des, ser)
        if handler.stream_stream:
            inner_ss = handler.stream_stream

            async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
                REQUEST_ID.set(_request_id(context))
                async for item in inner_ss(requests, context):
                    yield item

            return grpc.stream_stream_rpc_method_handler(stream_stream, des, ser)
        return handler  # type: ignore[no-any-return]


ServerKind = Literal["h2", "grpc"]


class Server:
    """A gRPC server with the standard health service; ``start()`` flips every service to SERVING.

    ``kind``: ``"grpc"`` is a stock grpc.aio server; ``"h2"`` is :class:`omniroute_core.grpc_h2.H2Server`, which
    serves the same generated servicers in the event loop, without gRPC
    core's threads. Either way ``self.server`` takes ``add_XServicer_to_server`` and request ids are restored.
    ``max_connection_age_s`` (0: none): connections this old (±10 %) get GOAWAY and their clients reconnect,
    so that new replicas behind a Service get calls too; the calls running then end in their own time.
    """

    def __init__(
        self, bind: str, service_names: Sequence[str], kind: ServerKind = "grpc", *, max_connection_age_s: float = 0.0
    ) -> None:
        self.server: Any
        if kind == "h2":
            self.server = H2Server(
                max_receive=MAX_MESSAGE, on_call=restore_request_id, max_connection_age_s=max_connection_age_s
            )
        else:
            options = list(CHANNEL_OPTIONS)
            if max_connection_age_s > 0:  # gRPC core applies its own jitter; its grace has no limit by default
                options.append(("grpc.max_connection_age_ms", int(max_connection_age_s * 1000)))
            self.server = grpc.aio.server(interceptors=[RequestIdInterceptor()], options=options)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._names = ["", *service_names]
        self.port = self.server.add_insecure_port(bind)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {bind}")

    async def start(self) -> None:
        await self.server.start()
        for name in self._names:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        """Report NOT_SERVING first so balancers drain, then stop accepting and finish in-flight calls."""
        for name in self._names:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def wait_healthy(addr: str, timeout: float = 10.0, service: str = "") -> bool:
    """Poll the standard health service of ``addr`` until SERVING or ``timeout`` seconds pass."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    async with insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while loop.time() < end:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    return False
