"""``/api/provider-nodes``: OpenAI-compatible and Anthropic-compatible endpoints with a user-chosen prefix.

Body (camelCase): ``{"name", "prefix", "type": "openai-compatible" | "anthropic-compatible", "apiType": "chat" |
"responses" (OpenAI-compatible) | "messages" (Anthropic-compatible), "baseUrl", "headers" (or OmniRoute's
"customHeaders"), "chatPath", "modelsPath", "apiKey"}``. A node is a provider whose id is generated
(``openai-compatible-<hex>``); its accounts are ordinary connections (``POST /api/providers`` with ``"provider"``
= the node id), and ``"apiKey"`` on create (even ``""`` for an endpoint without auth) adds the first one in the same
change. Requests then route as ``<prefix>/<model>``; models added with ``POST /api/provider-models`` make bare
names find the node too.

Custom headers are sent on every request to the node (after the credential, before a connection's own headers).
They are stored encrypted (AES-GCM bound to the node id) and returned with credential-like values masked; a ``PUT``
that sends back a masked value keeps the stored one. ``PUT`` is a partial update (``headers`` replaces the whole
map); the type cannot change. ``{ref}`` is the id or the prefix.

Refused: an invalid body (400); a base URL on a link-local or cloud metadata address (400, unless
``ALLOW_LINK_LOCAL_PROVIDERS`` is set); a prefix that is a catalog provider's id or alias, another node's prefix, or the
start of an alias (``<prefix>/...``, which the node would shadow) (409); deleting a node that an alias or a combo
step names by its prefix (409). Deleting a node deletes its connections and custom models.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from pydantic.alias_generators import to_camel

from omniroute_core import jsonx
from omniroute_core.nodes import NODE_KINDS
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import Context, ContextDep, check_address, config_change
from omniroute_dashboard.fields import HeaderMap, HttpUrl, Prefix, UrlPath, masked_headers, unmask
from omniroute_dashboard.routing_store import Conn, lock_names, names_view
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/provider-nodes", dependencies=[Depends(require_admin)])

NodeType = Literal["openai-compatible", "anthropic-compatible"]
_DEFAULT_API_TYPE = {"openai-compatible": "chat", "anthropic-compatible": "messages"}
_COLUMNS = "id, prefix, name, type, api_type, base_url, headers_enc, chat_path, models_path, created_at, updated_at"
# SQL is built only from these constants; every value travels as a bind parameter
_SELECT = f"SELECT {_COLUMNS} FROM provider_nodes"  # noqa: S608
_BY_REF = f"{_SELECT} WHERE id = $1 OR lower(prefix) = lower($1) ORDER BY id = $1 DESC LIMIT 1"
_INSERT = (
    "INSERT INTO provider_nodes (id, prefix, name, type, api_type, base_url, headers_enc, chat_path, models_path) "  # noqa: S608
    f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}"
)
_UPDATE = (
    "UPDATE provider_nodes SET prefix = $2, name = $3, api_type = $4, base_url = $5, headers_enc = $6, "  # noqa: S608
    f"chat_path = $7, models_path = $8, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}"
)


class _Create(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)
    name: StrictStr = Field(min_length=1, max_length=200)
    prefix: Prefix
    type: NodeType = "openai-compatible"
    api_type: StrictStr | None = None
    base_url: HttpUrl
    headers: HeaderMap | None = None
    custom_headers: HeaderMap | None = None
    chat_path: UrlPath = ""
    models_path: UrlPath = ""
    api_key: StrictStr | None = Field(default=None, max_length=16384)


class _Update(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)
    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    prefix: Prefix | None = None
    type: NodeType | None = None
    api_type: StrictStr | None = None
    base_url: HttpUrl | None = None
    headers: HeaderMap | None = None
    custom_headers: HeaderMap | None = None
    chat_path: UrlPath | None = None
    models_path: UrlPath | None = None


def _api_type(node_type: str, given: str | None) -> str:
    api_type = given or _DEFAULT_API_TYPE[node_type]
    if (node_type, api_type) not in NODE_KINDS:
        allowed = sorted(a for t, a in NODE_KINDS if t == node_type)
        raise ApiError(
            400, f"apiType {api_type!r} is not valid for {node_type}; one of: {', '.join(allowed)}", param="apiType"
        )
    return api_type


def _base_url(node_type: str, url: str) -> str:
    # OmniRoute accepts the full Messages URL for an Anthropic-compatible node; the path is the node's chatPath
    return url.removesuffix("/messages") if node_type == "anthropic-compatible" else url


def _headers(ctx: Context, node_id: str, token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        doc = jsonx.loads(ctx.cipher.decrypt(token, aad=node_id))
    except (ValueError, jsonx.JSONDecodeError):
        log.warning("stored node headers do not decrypt", extra={"node_id": node_id})
        return {}
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def _seal(ctx: Context, node_id: str, headers: dict[str, str]) -> str:
    return ctx.cipher.encrypt(jsonx.dumps_str(headers), aad=node_id) if headers else ""


async def _public(ctx: Context, conn: Conn | None, row: asyncpg.Record) -> dict[str, Any]:
    db = conn or ctx.pool
    counts = await db.fetchrow(
        "SELECT count(*) AS total, count(*) FILTER (WHERE is_active) AS active FROM provider_connections "
        "WHERE provider = $1",
        row["id"],
    )
    models = await db.fetch("SELECT model FROM provider_models WHERE provider = $1 ORDER BY model", row["id"])
    kind = NODE_KINDS[(row["type"], row["api_type"])]
    return {
        "id": row["id"],
        "prefix": row["prefix"],
        "name": row["name"],
        "type": row["type"],
        "apiType": row["api_type"],
        "format": kind.format,
        "baseUrl": row["base_url"],
        "headers": masked_headers(_headers(ctx, row["id"], row["headers_enc"])),
        "chatPath": row["chat_path"] or kind.chat_path,
        "modelsPath": row["models_path"] or "/models",
        "connections": int(counts["total"]) if counts else 0,
        "activeConnections": int(counts["active"]) if counts else 0,
        "models": [r["model"] for r in models],
        # a catalog provider added later with the same id or alias wins the prefix (catalog first)
        "shadowed": ctx.catalog.lookup(row["prefix"]) is not None,
        "createdAt": row["created_at"].isoformat(),
        "updatedAt": row["updated_at"].isoformat(),
    }


async def _check_prefix(conn: Conn, ctx: Context, prefix: str, node_id: str) -> None:
    spec = ctx.catalog.lookup(prefix)
    if spec is not None:
        raise ApiError(
            409, f"prefix {prefix!r} belongs to the catalog provider {spec.id!r}", param="prefix", code="prefix_taken"
        )
    other = await conn.fetchval(
        "SELECT id FROM provider_nodes WHERE lower(prefix) = lower($1) AND id <> $2", prefix, node_id
    )
    if other is not None:
        raise ApiError(409, f"prefix {prefix!r} is used by provider node {other}", param="prefix", code="prefix_taken")
    view = await names_view(conn)
    clashes = sorted(a for a in view.aliases if a.lower() == prefix or a.lower().startswith(prefix + "/"))
    if clashes:
        raise ApiError(
            409,
            f"prefix {prefix!r} would shadow the alias(es) {', '.join(clashes)}; rename or delete them first",
            param="prefix",
            code="prefix_shadows_alias",
        )


def _not_found(ref: str) -> ApiError:
    return ApiError(404, f"Provider node not found: {ref}", code="node_not_found")


@router.get("")
async def list_nodes(ctx: ContextDep) -> Response:
    """``{"nodes": [...], "total": n}`` ordered by prefix."""
    rows = await ctx.pool.fetch(f"{_SELECT} ORDER BY prefix")
    return json_response({"nodes": [await _public(ctx, None, r) for r in rows], "total": len(rows)})


@router.post("")
async def create_node(request: Request, ctx: ContextDep) -> Response:
    """201 ``{"node", "connectionId"}`` (``connectionId`` null unless ``apiKey`` was given)."""
    body = await parse_body(request, _Create)
    check_address(ctx, body.base_url, "baseUrl")
    api_type = _api_type(body.type, body.api_type)
    node_id = f"{body.type}-{uuid.uuid4().hex[:12]}"
    headers = {**(body.custom_headers or {}), **(body.headers or {})}
    connection_id: str | None = None
    async with config_change(ctx) as conn:
        await lock_names(conn)
        await _check_prefix(conn, ctx, body.prefix, node_id)
        row = await conn.fetchrow(
            _INSERT,
            node_id,
            body.prefix,
            body.name.strip(),
            body.type,
            api_type,
            _base_url(body.type, body.base_url),
            _seal(ctx, node_id, headers),
            body.chat_path,
            body.models_path,
        )
        if body.api_key is not None:
            connection_id = str(uuid.uuid4())
            key_enc = ctx.cipher.encrypt(body.api_key, aad=connection_id) if body.api_key else ""
            await conn.execute(
                "INSERT INTO provider_connections (id, provider, name, base_url, api_key_enc) "
                "VALUES ($1, $2, $3, '', $4)",
                connection_id,
                node_id,
                body.name.strip(),
                key_enc,
            )
        assert row is not None
        public = await _public(ctx, conn, row)
    return json_response({"node": public, "connectionId": connection_id}, status=201)


@router.get("/{ref}")
async def get_node(ref: str, ctx: ContextDep) -> Response:
    row = await ctx.pool.fetchrow(_BY_REF, ref)
    if row is None:
        raise _not_found(ref)
    return json_response({"node": await _public(ctx, None, row)})


@router.put("/{ref}")
async def update_node(ref: str, request: Request, ctx: ContextDep) -> Response:
    """Partial update; 404 for an unknown node; 400/409 as for ``POST``."""
    body = await parse_body(request, _Update)
    check_address(ctx, body.base_url or "", "baseUrl")
    async with config_change(ctx) as conn:
        await lock_names(conn)
        old = await conn.fetchrow(_BY_REF + " FOR UPDATE", ref)
        if old is None:
            raise _not_found(ref)
        if body.type is not None and body.type != old["type"]:
            raise ApiError(400, "a node's type cannot change; create a new node instead", param="type")
        prefix = body.prefix or old["prefix"]
        if prefix != old["prefix"]:
            await _check_prefix(conn, ctx, prefix, old["id"])
        headers = _headers(ctx, old["id"], old["headers_enc"])
        if body.headers is not None or body.custom_headers is not None:
            headers = unmask({**(body.custom_headers or {}), **(body.headers or {})}, headers)
        row = await conn.fetchrow(
            _UPDATE,
            old["id"],
            prefix,
            body.name.strip() if body.name is not None else old["name"],
            _api_type(old["type"], body.api_type or old["api_type"]),
            _base_url(old["type"], body.base_url) if body.base_url is not None else old["base_url"],
            _seal(ctx, old["id"], headers),
            body.chat_path if body.chat_path is not None else old["chat_path"],
            body.models_path if body.models_path is not None else old["models_path"],
        )
        assert row is not None
        public = await _public(ctx, conn, row)
    return json_response({"node": public})


@router.delete("/{ref}")
async def delete_node(ref: str, ctx: ContextDep) -> Response:
    """404 for an unknown node; 409 while an alias or a combo step names ``<prefix>/...``."""
    async with config_change(ctx) as conn:
        await lock_names(conn)
        old = await conn.fetchrow(_BY_REF, ref)
        if old is None:
            raise _not_found(ref)
        view = await names_view(conn)
        start = old["prefix"].lower() + "/"
        users = sorted(f"alias {a!r}" for a, target in view.aliases.items() if target.lower().startswith(start))
        users += sorted(
            f"combo {c.name!r}" for c in view.combos if any(s.model.lower().startswith(start) for s in c.steps)
        )
        if users:
            raise ApiError(
                409,
                f"Provider node {old['prefix']!r} is used by {', '.join(users)}; change those first",
                code="node_in_use",
            )
        deleted = await conn.fetch("DELETE FROM provider_connections WHERE provider = $1 RETURNING id", old["id"])
        await conn.execute("DELETE FROM provider_models WHERE provider = $1", old["id"])
        await conn.execute("DELETE FROM provider_nodes WHERE id = $1", old["id"])
    return json_response(
        {"id": old["id"], "message": "Provider node deleted", "deletedConnections": [r["id"] for r in deleted]}
    )
