"""``/api/models/alias``: model aliases, a name that stands for another model string.

``GET`` → ``{"aliases": {alias: model}, "total": n}``. ``POST`` (or ``PUT``) ``{"alias", "model"}`` creates (201) or
repoints (200) an alias; ``DELETE ?alias=<name>`` (or ``DELETE /api/models/alias/<name>``) removes one. The target
may be ``provider/model``, a combo, another alias or a bare catalog name; the executor resolves a bare model string
through aliases first, then combos, then catalog inference (:mod:`omniroute_core.resolution`).

Refused with 400: an alias that is a provider prefix or starts with one (``openai/...`` always names the provider,
so the alias could never be reached), an alias named like a combo (one of them would be unreachable), a target that
does not resolve (unknown provider, unknown or ambiguous bare name), and a change that would make aliases and
combos refer to each other in a cycle. Deleting an alias that another alias or a combo step names is 409.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from omniroute_core.resolution import ResolveError, name_model, provider_for_prefix, reference_cycle
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import Context, ContextDep, config_change
from omniroute_dashboard.fields import ModelId
from omniroute_dashboard.routing_store import Conn, lock_names, names_view
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["router"]

router = APIRouter(prefix="/api/models/alias", dependencies=[Depends(require_admin)])


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")
    alias: Annotated[ModelId, Field(max_length=200)]
    model: ModelId


@router.get("")
async def list_aliases(ctx: ContextDep) -> Response:
    rows = await ctx.pool.fetch("SELECT alias, model FROM model_aliases ORDER BY alias")
    return json_response({"aliases": {r["alias"]: r["model"] for r in rows}, "total": len(rows)})


@router.post("")
async def create_alias(request: Request, ctx: ContextDep) -> Response:
    return await _upsert(request, ctx)


@router.put("")
async def put_alias(request: Request, ctx: ContextDep) -> Response:
    return await _upsert(request, ctx)


async def _upsert(request: Request, ctx: Context) -> Response:
    """201 when the alias is new, 200 when it was repointed; 400 as in the module docstring."""
    body = await parse_body(request, _Body)
    async with config_change(ctx) as conn:
        await lock_names(conn)
        await _check(conn, ctx, body.alias, body.model)
        created = await conn.fetchval(
            "INSERT INTO model_aliases (alias, model) VALUES ($1, $2) ON CONFLICT (alias) DO UPDATE "
            "SET model = EXCLUDED.model, updated_at = now() RETURNING xmax = 0",
            body.alias,
            body.model,
        )
    return json_response({"success": True, "alias": body.alias, "model": body.model}, status=201 if created else 200)


async def _check(conn: Conn, ctx: Context, alias: str, model: str) -> None:
    view = await names_view(conn)
    prefix, sep, _ = alias.partition("/")
    for name in (alias, prefix) if sep else (alias,):
        if provider_for_prefix(name, ctx.catalog, view) is not None:
            raise ApiError(
                400,
                f"alias {alias!r} would be shadowed by the provider prefix {name!r}: 'prefix/model' and provider "
                "names always mean the provider; choose another alias",
                param="alias",
                code="alias_shadows_provider",
            )
    if alias in view.combos_by_name:
        raise ApiError(
            400,
            f"alias {alias!r} has the name of a combo; one of them could never be reached",
            param="alias",
            code="alias_shadows_combo",
        )
    view = await names_view(conn, aliases={**view.aliases, alias: model})
    cycle = reference_cycle(alias, ctx.catalog, view)
    if cycle is not None:
        raise ApiError(400, f"alias cycle: {' -> '.join(cycle)}", param="model", code="alias_cycle")
    try:
        name_model(alias, ctx.catalog, view)
    except ResolveError as exc:
        raise ApiError(
            400,
            f"alias target {model!r} does not resolve: {exc.error.message}",
            param="model",
            code="alias_target_invalid",
        ) from exc


@router.delete("")
async def delete_alias_by_query(ctx: ContextDep, alias: Annotated[str | None, Query()] = None) -> Response:
    if not alias:
        raise ApiError(400, "Name the alias to delete: DELETE /api/models/alias?alias=<name>", param="alias")
    return await _delete(ctx, alias)


@router.delete("/{alias:path}")
async def delete_alias(alias: str, ctx: ContextDep) -> Response:
    return await _delete(ctx, alias)


async def _delete(ctx: Context, alias: str) -> Response:
    """404 for an unknown alias; 409 while another alias or a combo step names it."""
    async with config_change(ctx) as conn:
        await lock_names(conn)
        view = await names_view(conn)
        if alias not in view.aliases:
            raise ApiError(404, f"Alias not found: {alias}", code="alias_not_found")
        users = sorted(f"alias {a!r}" for a, target in view.aliases.items() if target == alias and a != alias)
        users += sorted(f"combo {c.name!r}" for c in view.combos if any(s.model == alias for s in c.steps))
        if users:
            raise ApiError(
                409, f"Alias {alias!r} is used by {', '.join(users)}; change those first", code="alias_in_use"
            )
        await conn.execute("DELETE FROM model_aliases WHERE alias = $1", alias)
    return json_response({"success": True, "alias": alias})
