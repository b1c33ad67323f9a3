"""``/api/provider-models``: custom models, a model id added to a catalog provider or a provider node.

``GET [?provider=]`` → ``{"models": [...], "total": n}``. ``POST {"provider", "modelId" (or "model"), "modelName"
(or "name"), "type": "chat" | "embedding" | "image" | "audio", "prices": {"input", "output"}, "reasoning"}`` adds a
model (201) or updates it (200): ``provider`` is a catalog id or alias, or a node's id or prefix (stored as the id).
``DELETE ?provider=&model=`` removes one (404 when absent).

A custom model makes a bare model name find its provider (catalog inference), is listed by ``/api/models/catalog``,
lends its prices to cost-optimized routing (USD per million tokens) and, with ``reasoning``, lets the thinking-budget
setting turn reasoning on for it. An unknown provider or a malformed body is a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from omniroute_core.resolution import provider_by_id, provider_for_prefix
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import Context, ContextDep, config_change
from omniroute_dashboard.fields import ModelId
from omniroute_dashboard.routing_store import Conn, names_view
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["router"]

router = APIRouter(prefix="/api/provider-models", dependencies=[Depends(require_admin)])

Price = Annotated[StrictInt | StrictFloat, Field(ge=0, le=1_000_000)]
_COLUMNS = "provider, model, type, name, prices, reasoning, created_at, updated_at"
# SQL is built only from these constants; every value travels as a bind parameter
_LIST = (
    f"SELECT {_COLUMNS} FROM provider_models WHERE $1::text IS NULL OR provider = $1 "  # noqa: S608
    "ORDER BY provider, model"
)
_UPSERT = (
    "INSERT INTO provider_models (provider, model, type, name, prices, reasoning) "  # noqa: S608
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (provider, model) DO UPDATE SET type = EXCLUDED.type, "
    "name = EXCLUDED.name, prices = EXCLUDED.prices, reasoning = EXCLUDED.reasoning, updated_at = now() "
    f"RETURNING {_COLUMNS}, xmax = 0 AS created"
)


class _Prices(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Price = 0
    output: Price = 0


class _Create(BaseModel):
    model_config = ConfigDict(extra="ignore")
    provider: StrictStr = Field(min_length=1, max_length=200)
    modelId: ModelId | None = None
    model: ModelId | None = None
    modelName: StrictStr | None = Field(default=None, max_length=300)
    name: StrictStr | None = Field(default=None, max_length=300)
    type: Literal["chat", "embedding", "image", "audio"] = "chat"
    prices: _Prices | None = None
    reasoning: StrictBool = False


async def _provider_id(conn: Conn, ctx: Context, given: str) -> tuple[str, str]:
    """(provider id, prefix for model strings) of a catalog id/alias or a node id/prefix; 400 when unknown."""
    view = await names_view(conn)
    spec = provider_by_id(given, ctx.catalog, view) or provider_for_prefix(given, ctx.catalog, view)
    if spec is None:
        raise ApiError(
            400,
            f"unknown provider {given!r}: use a catalog provider id (see GET /api/models/catalog) or a provider "
            "node's id or prefix",
            param="provider",
            code="unknown_provider",
        )
    node = view.nodes_by_id.get(spec.id)
    return spec.id, node.prefix if node is not None else spec.id


def _public(row: asyncpg.Record, prefix: str) -> dict[str, Any]:
    return {
        "provider": row["provider"],
        "model": row["model"],
        "id": f"{prefix}/{row['model']}",
        "name": row["name"] or row["model"],
        "type": row["type"],
        "prices": row["prices"] or None,
        "reasoning": row["reasoning"],
        "createdAt": row["created_at"].isoformat(),
        "updatedAt": row["updated_at"].isoformat(),
    }


async def _prefixes(conn: Conn) -> dict[str, str]:
    return {r["id"]: r["prefix"] for r in await conn.fetch("SELECT id, prefix FROM provider_nodes")}


@router.get("")
async def list_models(ctx: ContextDep, provider: Annotated[str | None, Query()] = None) -> Response:
    async with ctx.pool.acquire() as conn:
        provider_id = (await _provider_id(conn, ctx, provider))[0] if provider else None
        rows = await conn.fetch(_LIST, provider_id)
        prefixes = await _prefixes(conn)
    models = [_public(r, prefixes.get(r["provider"], r["provider"])) for r in rows]
    return json_response({"models": models, "total": len(models)})


@router.post("")
async def add_model(request: Request, ctx: ContextDep) -> Response:
    """201 ``{"model": {...}}`` when new, 200 when an existing one was updated."""
    body = await parse_body(request, _Create)
    model = body.modelId or body.model
    if model is None:
        raise ApiError(400, "Invalid request: modelId: the model id is required", param="modelId")
    prices = body.prices.model_dump() if body.prices is not None else {}
    async with config_change(ctx) as conn:
        provider_id, prefix = await _provider_id(conn, ctx, body.provider)
        row = await conn.fetchrow(
            _UPSERT,
            provider_id,
            model,
            body.type,
            body.modelName or body.name or "",
            prices,
            body.reasoning,
        )
    assert row is not None
    return json_response({"model": _public(row, prefix)}, status=201 if row["created"] else 200)


@router.delete("")
async def remove_model(
    ctx: ContextDep,
    provider: Annotated[str | None, Query()] = None,
    model: Annotated[str | None, Query()] = None,
) -> Response:
    """404 when the provider has no such custom model."""
    if not provider or not model:
        raise ApiError(400, "Name what to delete: DELETE /api/provider-models?provider=<id>&model=<model id>")
    async with config_change(ctx) as conn:
        provider_id, _ = await _provider_id(conn, ctx, provider)
        deleted = await conn.fetchval(
            "DELETE FROM provider_models WHERE provider = $1 AND model = $2 RETURNING model", provider_id, model
        )
        if deleted is None:
            raise ApiError(404, f"Custom model not found: {provider}/{model}", code="model_not_found")
    return json_response({"removed": True, "provider": provider_id, "model": model})
