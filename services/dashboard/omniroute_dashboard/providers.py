"""``/api/providers``: provider connections (one account of one provider each).

Request bodies use the API's camelCase names (``apiKey``, ``baseUrl``, ``isActive``); unknown fields are ignored.
The API key is encrypted with AES-GCM bound to the connection id (``aad = id``) and never returned: responses
carry it masked (``sk-...abcd``), as do credential-bearing ``headers`` values. An empty ``apiKey`` stores no
credential (``apiKeyEnc`` is ``""`` in the snapshot). ``PUT`` is a partial update: an omitted (or null) field keeps
its value, so a ``PUT`` without ``apiKey`` keeps the stored key; ``"baseUrl": ""`` reverts to the catalog default.
A base URL on a link-local or cloud metadata address is refused (400) unless ``ALLOW_LINK_LOCAL_PROVIDERS`` is set.

A connection test's recorded result (``testStatus``, ``lastTested``, ``lastError``) is cleared by a ``PUT`` that
changes what the test exercised: provider, ``baseUrl``, ``apiKey``, ``headers`` or ``options``.

``options`` fills a catalog provider's URL parameters (Azure: ``{"apiVersion": "2025-01-01-preview"}``; the
catalog's ``params`` are the defaults and the only names accepted). A provider whose catalog entry has no base URL
(Azure: each resource has its own endpoint) needs ``baseUrl`` on the connection.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from omniroute_core.catalog import Catalog
from omniroute_core.crypto import Cipher
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, check_address, config_change
from omniroute_dashboard.fields import HeaderMap, mask_secret, masked_headers, unmask
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["check_catalog", "router"]

log = logging.getLogger(__name__)

T = TypeVar("T")

router = APIRouter(prefix="/api/providers", dependencies=[Depends(require_admin)])

_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]*")
# SQL is built only from these constants; every value travels as a bind parameter
_COLUMNS = (
    "id, provider, name, base_url, api_key_enc, priority, is_active, headers, options, created_at, updated_at, "
    "test_status, last_tested_at, last_error"
)
_SELECT = f"SELECT {_COLUMNS} FROM provider_connections"  # noqa: S608
_INSERT = (
    "INSERT INTO provider_connections "  # noqa: S608
    "(id, provider, name, base_url, api_key_enc, priority, is_active, headers, options) "
    f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}"
)
# $10: what a connection test exercised changed (provider, endpoint, key, headers, options): its result is stale
_UPDATE = (
    "UPDATE provider_connections SET provider = $2, name = $3, base_url = $4, api_key_enc = $5, priority = $6, "  # noqa: S608
    "is_active = $7, headers = $8, options = $9, updated_at = now(), "
    "test_status = CASE WHEN $10 THEN NULL ELSE test_status END, "
    "last_tested_at = CASE WHEN $10 THEN NULL ELSE last_tested_at END, "
    f"last_error = CASE WHEN $10 THEN NULL ELSE last_error END WHERE id = $1 RETURNING {_COLUMNS}"
)
_PG_INT = 2**31 - 1


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError("must match ^[a-z0-9][a-z0-9._-]*$ (e.g. 'openai')")
    return value


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _base_url(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://api.openai.com/v1")
    return value.rstrip("/")


def _options(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if not _SLUG_OPTION.fullmatch(key):
            raise ValueError(f"{key!r} is not an option name (letters and digits, e.g. 'apiVersion')")
        if len(item) > 200 or "\r" in item or "\n" in item:
            raise ValueError(f"the value of {key!r} is longer than 200 characters or contains a line break")
    return value


_SLUG_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")

Slug = Annotated[StrictStr, Field(max_length=64), AfterValidator(_slug)]
Name = Annotated[StrictStr, Field(max_length=200), AfterValidator(_name)]
BaseUrl = Annotated[StrictStr, Field(max_length=2048), AfterValidator(_base_url)]
Secret = Annotated[StrictStr, Field(max_length=16384)]
Priority = Annotated[StrictInt, Field(ge=-_PG_INT, le=_PG_INT)]
Headers = HeaderMap
Options = Annotated[dict[StrictStr, StrictStr], Field(max_length=16), AfterValidator(_options)]


class _Create(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)
    provider: Slug
    name: Name
    api_key: Secret = ""
    base_url: BaseUrl = ""
    priority: Priority = 0
    is_active: StrictBool = True
    headers: Headers = Field(default_factory=dict)
    options: Options = Field(default_factory=dict)


class _Update(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)
    provider: Slug | None = None
    name: Name | None = None
    api_key: Secret | None = None
    base_url: BaseUrl | None = None
    priority: Priority | None = None
    is_active: StrictBool | None = None
    headers: Headers | None = None
    options: Options | None = None


def check_catalog(catalog: Catalog, provider: str, base_url: str, options: dict[str, str]) -> None:
    """What the catalog asks of a connection of ``provider``; raises a 400 ``ApiError``. Providers the catalog
    does not know (provider nodes) take no options."""
    spec = catalog.providers.get(provider)
    known = spec.params if spec is not None else {}
    unknown = sorted(set(options) - set(known))
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise ApiError(
            400,
            f"Invalid request: options: unknown option(s) {', '.join(unknown)} for provider {provider!r} "
            f"(accepted: {accepted})",
            param="options",
            code="invalid_options",
        )
    if spec is not None and spec.base_url_required and not base_url:
        raise ApiError(
            400,
            f"Invalid request: baseUrl: provider {provider!r} has no default endpoint: set baseUrl to your "
            "resource's endpoint (Azure: https://<resource>.openai.azure.com/openai)",
            param="baseUrl",
            code="base_url_required",
        )


def _masked_key(cipher: Cipher, row: asyncpg.Record) -> str:
    if not row["api_key_enc"]:
        return ""
    try:
        return mask_secret(cipher.decrypt(row["api_key_enc"], aad=row["id"]))
    except ValueError:
        # wrong OMNIROUTE_ENCRYPTION_KEY or a tampered row: still list the connection, hide the key entirely
        log.warning("stored API key does not decrypt", extra={"connection_id": row["id"]})
        return "****"


def _public(cipher: Cipher, row: asyncpg.Record) -> dict[str, Any]:
    headers: dict[str, str] = row["headers"]
    return {
        "id": row["id"],
        "provider": row["provider"],
        "name": row["name"],
        "baseUrl": row["base_url"],
        "apiKey": _masked_key(cipher, row),
        "priority": row["priority"],
        "isActive": row["is_active"],
        "headers": masked_headers(headers),
        "options": row["options"],
        "createdAt": row["created_at"].isoformat(),
        "updatedAt": row["updated_at"].isoformat(),
        # the last POST /api/providers/{id}/test (omniroute_dashboard.provider_admin)
        "testStatus": row["test_status"] or "unknown",
        "lastTested": row["last_tested_at"].isoformat() if row["last_tested_at"] else None,
        "lastError": row["last_error"],
    }


def _not_found(connection_id: str) -> ApiError:
    return ApiError(404, f"Connection not found: {connection_id}", code="connection_not_found")


@router.get("")
async def list_connections(ctx: ContextDep, provider: str | None = None) -> Response:
    """``{"connections": [...], "total": n}``, ordered by provider, priority, name; ``?provider=`` filters."""
    rows = await ctx.pool.fetch(
        f"{_SELECT} WHERE $1::text IS NULL OR provider = $1 ORDER BY provider, priority, name, id",
        provider,
    )
    return json_response({"connections": [_public(ctx.cipher, r) for r in rows], "total": len(rows)})


@router.post("")
async def create_connection(request: Request, ctx: ContextDep) -> Response:
    """201 ``{"id", "connection"}``; 400 for an invalid body."""
    body = await parse_body(request, _Create)
    check_address(ctx, body.base_url, "baseUrl")
    check_catalog(ctx.catalog, body.provider, body.base_url, body.options)
    connection_id = str(uuid.uuid4())
    key_enc = ctx.cipher.encrypt(body.api_key, aad=connection_id) if body.api_key else ""
    async with config_change(ctx) as conn:
        row = await conn.fetchrow(
            _INSERT,
            connection_id,
            body.provider,
            body.name,
            body.base_url,
            key_enc,
            body.priority,
            body.is_active,
            body.headers,
            body.options,
        )
    assert row is not None
    return json_response({"id": connection_id, "connection": _public(ctx.cipher, row)}, status=201)


@router.get("/{connection_id}")
async def get_connection(connection_id: str, ctx: ContextDep) -> Response:
    row = await ctx.pool.fetchrow(f"{_SELECT} WHERE id = $1", connection_id)
    if row is None:
        raise _not_found(connection_id)
    return json_response({"connection": _public(ctx.cipher, row)})


@router.put("/{connection_id}")
async def update_connection(connection_id: str, request: Request, ctx: ContextDep) -> Response:
    """Partial update (see the module docstring); 404 for an unknown id."""
    body = await parse_body(request, _Update)
    check_address(ctx, body.base_url or "", "baseUrl")
    async with config_change(ctx) as conn:
        old = await conn.fetchrow(f"{_SELECT} WHERE id = $1 FOR UPDATE", connection_id)
        if old is None:
            raise _not_found(connection_id)
        key_enc = old["api_key_enc"]
        if body.api_key is not None:
            key_enc = ctx.cipher.encrypt(body.api_key, aad=connection_id) if body.api_key else ""
        provider, base_url = _pick(body.provider, old["provider"]), _pick(body.base_url, old["base_url"])
        options = _pick(body.options, old["options"])
        # a secret header sent back as GET showed it (masked) keeps its stored value
        headers = old["headers"] if body.headers is None else unmask(body.headers, old["headers"])
        check_catalog(ctx.catalog, provider, base_url, options)
        tested = (old["provider"], old["base_url"], old["headers"], old["options"])
        stale = body.api_key is not None or tested != (provider, base_url, headers, options)
        row = await conn.fetchrow(
            _UPDATE,
            connection_id,
            provider,
            _pick(body.name, old["name"]),
            base_url,
            key_enc,
            _pick(body.priority, old["priority"]),
            _pick(body.is_active, old["is_active"]),
            headers,
            options,
            stale,
        )
    assert row is not None
    return json_response({"connection": _public(ctx.cipher, row)})


@router.delete("/{connection_id}")
async def delete_connection(connection_id: str, ctx: ContextDep) -> Response:
    async with config_change(ctx) as conn:
        deleted = await conn.fetchval("DELETE FROM provider_connections WHERE id = $1 RETURNING id", connection_id)
        if deleted is None:
            raise _not_found(connection_id)
    return json_response({"id": connection_id, "message": "Connection deleted successfully"})


def _pick(new: T | None, old: T) -> T:
    return old if new is None else new
