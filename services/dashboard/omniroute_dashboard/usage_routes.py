"""``/api/pricing``, ``/api/usage/*`` and ``/api/telemetry/summary``: relayed to the usage service over gRPC.

The usage service owns its tables, the shipped price file, cost and budget arithmetic; these handlers add the
admin guard, pass the query string, the raw body and the path id through ``omniroute.v1.UsageService``'s
management RPCs, and return the JSON body they answer unchanged (shapes: services/usage/README.md). gRPC errors
become the error envelope: INVALID_ARGUMENT → 400 (``param`` taken from the ``field:`` prefix of the message),
NOT_FOUND → 404, UNAVAILABLE or a timeout → 503, anything else → 502.

``GET /api/usage/{connectionId}`` answers 404 for an id that is neither a configured connection nor present in
the usage data (history of a deleted connection stays readable).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeAlias

import grpc
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from omniroute.v1 import usage_pb2, usage_pb2_grpc
from omniroute_core import grpcx, jsonx
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import Context, ContextDep
from omniroute_dashboard.rpc_errors import rpc_error
from omniroute_dashboard.web import ApiError

__all__ = ["router"]

UsageStub: TypeAlias = "usage_pb2_grpc.UsageServiceAsyncStub"
_Rpc: TypeAlias = Callable[..., "grpc.aio.UnaryUnaryCall[usage_pb2.ManageRequest, usage_pb2.ManageReply]"]

# management queries read at most a few thousand rollup rows or one page of events
_TIMEOUT_S = 10.0


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # runs inside the app's own lifespan, after the context is built; one channel for the process
    ctx = app.state.ctx
    assert isinstance(ctx, Context)
    channel = grpcx.insecure_channel(ctx.settings.usage_addr)
    app.state.usage_stub = usage_pb2_grpc.UsageServiceStub(channel)
    try:
        yield
    finally:
        await channel.close()


def _stub(request: Request) -> UsageStub:
    stub: UsageStub = request.app.state.usage_stub
    return stub


StubDep = Annotated[UsageStub, Depends(_stub)]

router = APIRouter(dependencies=[Depends(require_admin)], lifespan=_lifespan)


async def _call(rpc: _Rpc, request: Request, *, body: bool = False, path_id: str = "") -> dict[str, object]:
    message = usage_pb2.ManageRequest(
        params=dict(request.query_params),
        body_json=await request.body() if body else b"",
        path_id=path_id,
    )
    try:
        reply = await rpc(message, timeout=_TIMEOUT_S, metadata=grpcx.call_metadata())
    except grpc.aio.AioRpcError as exc:
        raise rpc_error(exc, service="Usage service", slug="usage") from exc
    doc: dict[str, object] = jsonx.loads(reply.body_json)
    return doc


def _json(doc: dict[str, object]) -> Response:
    return Response(content=jsonx.dumps(doc), media_type="application/json")


@router.get("/api/pricing")
async def get_pricing(request: Request, stub: StubDep) -> Response:
    """The merged price table (shipped defaults and overrides)."""
    return _json(await _call(stub.GetPricing, request))


@router.put("/api/pricing")
async def put_pricing(request: Request, stub: StubDep) -> Response:
    """Override one model's price: ``{"model", "provider"?, "input", "output", "cachedInput"?, ...}``."""
    return _json(await _call(stub.SetPricing, request, body=True))


@router.get("/api/usage/budget")
async def get_budgets(request: Request, stub: StubDep) -> Response:
    """Status of every key with a budget: limit, period, spent, remaining, reset time."""
    return _json(await _call(stub.GetBudgets, request))


@router.post("/api/usage/budget")
async def post_budget(request: Request, stub: StubDep) -> Response:
    """Set or replace a key's budget: ``{"keyId", "limit", "period": "daily"|"weekly"|"monthly"}``."""
    return _json(await _call(stub.SetBudget, request, body=True))


@router.get("/api/usage/history")
async def usage_history(request: Request, stub: StubDep) -> Response:
    return _json(await _call(stub.GetUsageHistory, request))


@router.get("/api/usage/logs")
async def usage_logs(request: Request, stub: StubDep) -> Response:
    return _json(await _call(stub.GetUsageLogs, request))


@router.get("/api/usage/request-logs")
async def request_logs(request: Request, stub: StubDep) -> Response:
    return _json(await _call(stub.GetRequestLogs, request))


@router.get("/api/telemetry/summary")
async def telemetry_summary(request: Request, stub: StubDep) -> Response:
    return _json(await _call(stub.GetTelemetrySummary, request))


@router.get("/api/usage/{connection_id}")
async def connection_usage(connection_id: str, request: Request, ctx: ContextDep, stub: StubDep) -> Response:
    """Usage of one provider connection; 404 when it is unknown (see the module docstring)."""
    doc = await _call(stub.GetConnectionUsage, request, path_id=connection_id)
    totals = doc.get("totals")
    used = isinstance(totals, dict) and bool(totals.get("requests"))
    if not used and not await ctx.pool.fetchval("SELECT 1 FROM provider_connections WHERE id = $1", connection_id):
        raise ApiError(404, f"Connection not found: {connection_id}", code="connection_not_found")
    return _json(doc)
