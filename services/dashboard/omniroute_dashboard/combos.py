"""``/api/combos``: named fallback chains that a model string can name instead of ``provider/model``.

Body: ``{"name", "strategy", "models": [...], "config": {...}}``. A step (an item of ``models``) is a model string
(``provider/model``, an alias or another combo's name) or ``{"model", "weight", "connectionId"}``. ``strategy`` is
one of :data:`omniroute_core.snapshot.COMBO_STRATEGIES` (default ``priority``). ``config`` knobs (all optional):
``maxRetries`` (retries of the same target), ``retryDelayMs``, ``maxRetryAfterMs`` (longest ``Retry-After`` that is
waited for), ``timeoutMs`` (per target), ``fallbackDelayMs`` (pause before the next target), ``maxAttempts``.

Refused with 400: an unknown strategy, no steps, a malformed step, unknown config knobs out of range, a name that
could be read as ``provider/model``, a name that is a model alias (``/api/models/alias``: one of the two could never
be reached), a reference cycle between combos and nesting deeper than
:data:`~omniroute_core.snapshot.MAX_COMBO_DEPTH`. A name already taken is 409, as is deleting or renaming a combo
that another combo or a model alias names. ``{id}`` in paths accepts the id or the name. ``PUT`` is a partial update.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from omniroute_core.snapshot import COMBO_STRATEGIES, MAX_COMBO_DEPTH
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, config_change
from omniroute_dashboard.store import Conn
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["check_graph", "router"]

router = APIRouter(prefix="/api/combos", dependencies=[Depends(require_admin)])

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_COLUMNS = "id, name, strategy, models, config, created_at, updated_at"
# SQL is built only from these constants; every value travels as a bind parameter
_SELECT = f"SELECT {_COLUMNS} FROM combos"  # noqa: S608
_INSERT = f"INSERT INTO combos (id, name, strategy, models, config) VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}"  # noqa: S608
_UPDATE = (
    "UPDATE combos SET name = $2, strategy = $3, models = $4, config = $5, updated_at = now() "  # noqa: S608
    f"WHERE id = $1 RETURNING {_COLUMNS}"
)


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("must match ^[A-Za-z0-9][A-Za-z0-9._:-]*$ (no '/': that would read as provider/model)")
    return value


def _strategy(value: str) -> str:
    if value not in COMBO_STRATEGIES:
        raise ValueError(f"unknown strategy {value!r}; one of: {', '.join(sorted(COMBO_STRATEGIES))}")
    return value


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    model: Annotated[StrictStr, Field(min_length=1, max_length=300)]
    weight: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 1
    connection_id: Annotated[StrictStr | None, Field(alias="connectionId", max_length=200)] = None


Step = Annotated[StrictStr, Field(min_length=1, max_length=300)] | _Step


class _Config(BaseModel):
    # field names are the API's camelCase: the stored config is exactly what the client sent
    model_config = ConfigDict(extra="forbid")
    maxRetries: Annotated[StrictInt, Field(ge=0, le=10)] | None = None
    retryDelayMs: Annotated[StrictInt, Field(ge=0, le=60_000)] | None = None
    maxRetryAfterMs: Annotated[StrictInt, Field(ge=0, le=600_000)] | None = None
    timeoutMs: Annotated[StrictInt, Field(ge=0, le=3_600_000)] | None = None
    fallbackDelayMs: Annotated[StrictInt, Field(ge=0, le=60_000)] | None = None
    maxAttempts: Annotated[StrictInt, Field(ge=1, le=100)] | None = None


Name = Annotated[StrictStr, Field(max_length=100), AfterValidator(_name)]
Strategy = Annotated[StrictStr, AfterValidator(_strategy)]
Steps = Annotated[list[Step], Field(min_length=1, max_length=100)]


class _Create(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Name
    strategy: Strategy = "priority"
    models: Steps
    config: _Config = Field(default_factory=_Config)


class _Update(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Name | None = None
    strategy: Strategy | None = None
    models: Steps | None = None
    config: _Config | None = None


def _stored_steps(steps: Sequence[str | _Step]) -> list[Any]:
    """Steps as stored and published: strings stay strings, objects get every field."""
    return [
        s if isinstance(s, str) else {"model": s.model, "weight": s.weight, "connectionId": s.connection_id}
        for s in steps
    ]


def _stored_config(config: _Config) -> dict[str, int]:
    return config.model_dump(exclude_none=True)


def _step_model(step: Any) -> str:
    return step if isinstance(step, str) else str(step["model"])


def check_graph(combos: Mapping[str, Sequence[Any]]) -> None:
    """Refuse cycles and nesting deeper than ``MAX_COMBO_DEPTH``. ``combos`` maps a name to its stored steps.

    Raises ``ApiError(400)`` naming the offending path.
    """

    def walk(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ApiError(400, f"combo cycle: {' -> '.join((*path, name))}", param="models", code="combo_cycle")
        path = (*path, name)
        if len(path) > MAX_COMBO_DEPTH:
            raise ApiError(
                400,
                f"combos nest deeper than {MAX_COMBO_DEPTH}: {' -> '.join(path)}",
                param="models",
                code="combo_too_deep",
            )
        for step in combos[name]:
            child = _step_model(step)
            if child in combos:
                walk(child, path)

    for name in combos:
        walk(name, ())


def _public(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "strategy": row["strategy"],
        "models": row["models"],
        "config": row["config"],
        "createdAt": row["created_at"].isoformat(),
        "updatedAt": row["updated_at"].isoformat(),
    }


def _not_found(ref: str) -> ApiError:
    return ApiError(404, f"Combo not found: {ref}", code="combo_not_found")


async def _graph(conn: Conn) -> dict[str, list[Any]]:
    # serialise combo changes so two concurrent edits cannot build a cycle between them (this lock is also the
    # routing-names lock that alias and provider-node changes take: omniroute_dashboard.routing_store.lock_names)
    await conn.execute("LOCK TABLE combos IN SHARE ROW EXCLUSIVE MODE")
    return {r["name"]: r["models"] for r in await conn.fetch("SELECT name, models FROM combos")}


async def _not_an_alias(conn: Conn, name: str) -> None:
    if await conn.fetchval("SELECT 1 FROM model_aliases WHERE alias = $1", name):
        raise ApiError(
            400,
            f"{name!r} is a model alias; a combo of that name could never be reached (aliases resolve first)",
            param="name",
            code="combo_shadows_alias",
        )


def _referrers(graph: Mapping[str, Sequence[Any]], name: str) -> list[str]:
    return sorted(n for n, steps in graph.items() if n != name and any(_step_model(s) == name for s in steps))


async def _users(conn: Conn, graph: Mapping[str, Sequence[Any]], name: str) -> list[str]:
    """The combos and model aliases that name combo ``name``."""
    aliases = await conn.fetch("SELECT alias FROM model_aliases WHERE model = $1 ORDER BY alias", name)
    return [*_referrers(graph, name), *(f"alias {r['alias']!r}" for r in aliases)]


@router.get("")
async def list_combos(ctx: ContextDep) -> Response:
    """``{"combos": [...], "total": n}`` ordered by name."""
    rows = await ctx.pool.fetch(f"{_SELECT} ORDER BY name")
    return json_response({"combos": [_public(r) for r in rows], "total": len(rows)})


@router.post("")
async def create_combo(request: Request, ctx: ContextDep) -> Response:
    """201 with the combo; 400 for an invalid body; 409 when the name is taken."""
    body = await parse_body(request, _Create)
    steps = _stored_steps(body.models)
    async with config_change(ctx) as conn:
        graph = await _graph(conn)
        if body.name in graph:
            raise ApiError(409, f"A combo named {body.name!r} already exists", param="name", code="combo_exists")
        await _not_an_alias(conn, body.name)
        graph[body.name] = steps
        check_graph(graph)
        row = await conn.fetchrow(
            _INSERT,
            str(uuid.uuid4()),
            body.name,
            body.strategy,
            steps,
            _stored_config(body.config),
        )
    assert row is not None
    return json_response(_public(row), status=201)


@router.get("/{ref}")
async def get_combo(ref: str, ctx: ContextDep) -> Response:
    row = await ctx.pool.fetchrow(f"{_SELECT} WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1", ref)
    if row is None:
        raise _not_found(ref)
    return json_response(_public(row))


@router.put("/{ref}")
async def update_combo(ref: str, request: Request, ctx: ContextDep) -> Response:
    """Partial update; 404 for an unknown combo; 400/409 as for ``POST``."""
    body = await parse_body(request, _Update)
    async with config_change(ctx) as conn:
        graph = await _graph(conn)
        old = await conn.fetchrow(f"{_SELECT} WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1", ref)
        if old is None:
            raise _not_found(ref)
        name = body.name or old["name"]
        steps = _stored_steps(body.models) if body.models is not None else old["models"]
        if name != old["name"]:
            if name in graph:
                raise ApiError(409, f"A combo named {name!r} already exists", param="name", code="combo_exists")
            if users := await _users(conn, graph, old["name"]):
                raise ApiError(409, f"Combo is used by {', '.join(users)}; cannot rename it", code="combo_in_use")
            await _not_an_alias(conn, name)
            del graph[old["name"]]
        graph[name] = steps
        check_graph(graph)
        row = await conn.fetchrow(
            _UPDATE,
            old["id"],
            name,
            body.strategy or old["strategy"],
            steps,
            _stored_config(body.config) if body.config is not None else old["config"],
        )
    assert row is not None
    return json_response(_public(row))


@router.delete("/{ref}")
async def delete_combo(ref: str, ctx: ContextDep) -> Response:
    """404 for an unknown combo; 409 while another combo names it."""
    async with config_change(ctx) as conn:
        graph = await _graph(conn)
        old = await conn.fetchrow("SELECT id, name FROM combos WHERE id = $1 OR name = $1 LIMIT 1", ref)
        if old is None:
            raise _not_found(ref)
        if users := await _users(conn, graph, old["name"]):
            raise ApiError(409, f"Combo is used by {', '.join(users)}; remove it there first", code="combo_in_use")
        await conn.execute("DELETE FROM combos WHERE id = $1", old["id"])
    return json_response({"id": old["id"], "message": "Combo deleted successfully"})
