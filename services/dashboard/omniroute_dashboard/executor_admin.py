"""The client of the executor's ``omniroute.v1.ProviderAdmin`` service (provider tests, model lists, proxy tests).

Only the executor talks HTTP to providers (DESIGN.md), so these routes ask it. One channel per process to
``EXECUTOR_ADDR``, opened by :data:`client_router`'s lifespan (include it in the app) and injected with
:data:`AdminDep`. gRPC errors become the error envelope: INVALID_ARGUMENT → 400 (``param`` from the message's
``field:`` prefix), NOT_FOUND → 404, UNAVAILABLE or a timeout → 503, anything else → 502.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeAlias

import grpc
from fastapi import APIRouter, Depends, FastAPI, Request

from omniroute.v1 import executor_pb2, executor_pb2_grpc
from omniroute_core import grpcx, jsonx
from omniroute_dashboard.context import Context
from omniroute_dashboard.rpc_errors import rpc_error

__all__ = ["AdminDep", "AdminStub", "call_admin", "client_router"]

AdminStub: TypeAlias = "executor_pb2_grpc.ProviderAdminAsyncStub"
_Rpc: TypeAlias = Callable[..., "grpc.aio.UnaryUnaryCall[executor_pb2.AdminRequest, executor_pb2.AdminReply]"]

# the executor bounds each provider call (ADMIN_CALL_TIMEOUT_S, 15 s by default); this only catches a lost executor
_TIMEOUT_S = 30.0


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ctx = app.state.ctx
    assert isinstance(ctx, Context)
    channel = grpcx.insecure_channel(ctx.settings.executor_addr)
    app.state.provider_admin = executor_pb2_grpc.ProviderAdminStub(channel)
    try:
        yield
    finally:
        await channel.close()


client_router = APIRouter(lifespan=_lifespan)


def _stub(request: Request) -> AdminStub:
    stub: AdminStub = request.app.state.provider_admin
    return stub


AdminDep = Annotated[AdminStub, Depends(_stub)]


async def call_admin(rpc: _Rpc, doc: dict[str, Any]) -> dict[str, Any]:
    """Send ``doc`` to one ProviderAdmin RPC and return its JSON reply; raises :class:`ApiError` on a gRPC error."""
    message = executor_pb2.AdminRequest(body_json=jsonx.dumps(doc))
    try:
        reply = await rpc(message, timeout=_TIMEOUT_S, metadata=grpcx.call_metadata())
    except grpc.aio.AioRpcError as exc:
        raise rpc_error(exc, service="Executor", slug="executor", not_found_code="provider_not_found") from exc
    out: dict[str, Any] = jsonx.loads(reply.body_json)
    return out
