"""``/api/keys``: API keys for the gateway (and, with the ``admin`` scope, for this API).

A new key is returned once by ``POST``; only its SHA-256 (``hash_api_key``) and a short display prefix are
stored. Scopes are described in :mod:`omniroute_dashboard.scopes`; omitted scopes default to ``["*"]``.
``expiresAt`` is ISO 8601 (a naive time is UTC) or Unix time, and must be in the future. ``DELETE`` removes the
key; ``PATCH`` (or ``PUT``) is a partial update (``revoked``, ``name``, ``scopes``, ``noLog``, ``allowedModels``,
``blockedModels``, ``rateLimits``, ``cachePolicy``; ``"expiresAt": null`` clears the expiry). Single-key responses
carry the key's public fields at the top level, as OmniRoute's do.

Restrictions (enforced by the edge from the config snapshot):

- ``allowedModels`` / ``blockedModels``: lists of fnmatch patterns (``openai/*``, ``*mini*``) matched against the
  model string the client sent. An empty allowed list allows every model; a blocked match always wins.
- ``rateLimits``: ``{"rpm", "tpm", "concurrent"}``, each a positive integer or null (no limit); a PATCH replaces
  the whole object (``null`` or ``{}`` clears it). Unknown fields are a 400.
- ``cachePolicy``: ``"deterministic"`` (cache only temperature-0 requests), ``"always"`` or ``"never"``; null (the
  default) follows the gateway's ``/api/settings/cache`` policy.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from omniroute_core.crypto import generate_api_key, hash_api_key
from omniroute_core.snapshot import RateLimits
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, config_change
from omniroute_dashboard.scopes import DEFAULT_SCOPES, KNOWN_SCOPES
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["PREFIX_LENGTH", "router"]

router = APIRouter(prefix="/api/keys", dependencies=[Depends(require_admin)])

PREFIX_LENGTH = 12  # "sk-omni-" plus 4 random characters: enough to tell keys apart, useless to an attacker
# SQL is built only from these constants; every value travels as a bind parameter
_COLUMNS = (
    "id, name, key_prefix, scopes, revoked, expires_at, no_log, allowed_models, blocked_models, rate_limits, "
    "cache_policy, created_at"
)
_SELECT = f"SELECT {_COLUMNS} FROM api_keys"  # noqa: S608
_INSERT = (
    "INSERT INTO api_keys (id, name, key_hash, key_prefix, scopes, expires_at, no_log, "  # noqa: S608
    "allowed_models, blocked_models, rate_limits, cache_policy) "
    f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {_COLUMNS}"
)
_UPDATE = (
    "UPDATE api_keys SET name = COALESCE($2, name), scopes = COALESCE($3, scopes), "  # noqa: S608
    "expires_at = CASE WHEN $4 THEN NULL ELSE COALESCE($5, expires_at) END, "
    "no_log = COALESCE($6, no_log), revoked = COALESCE($7, revoked), "
    "allowed_models = COALESCE($8, allowed_models), blocked_models = COALESCE($9, blocked_models), "
    "rate_limits = COALESCE($10, rate_limits), "
    "cache_policy = CASE WHEN $11 THEN $12 ELSE cache_policy END "
    f"WHERE id = $1 RETURNING {_COLUMNS}"
)


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _scopes(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("must name at least one scope")
    unknown = sorted(set(value) - KNOWN_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}; known: {sorted(KNOWN_SCOPES)}")
    return list(dict.fromkeys(value))


def _patterns(value: list[str]) -> list[str]:
    cleaned = [p.strip() for p in value]
    if any(not p for p in cleaned):
        raise ValueError("patterns must not be empty")
    return list(dict.fromkeys(cleaned))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Name = Annotated[StrictStr, Field(max_length=200), AfterValidator(_name)]
Scopes = Annotated[list[StrictStr], Field(max_length=16), AfterValidator(_scopes)]
Expiry = Annotated[datetime, AfterValidator(_utc)]
Patterns = Annotated[
    list[Annotated[StrictStr, Field(max_length=200)]], Field(max_length=100), AfterValidator(_patterns)
]
Limit = Annotated[StrictInt, Field(ge=1, le=1_000_000_000)]
CachePolicy = Literal["deterministic", "always", "never"]


class _RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpm: Limit | None = None
    tpm: Limit | None = None
    concurrent: Limit | None = None


class _Create(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)
    name: Name
    scopes: Scopes = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    expires_at: Expiry | None = None
    no_log: StrictBool = False
    allowed_models: Patterns = Field(default_factory=list)
    blocked_models: Patterns = Field(default_factory=list)
    rate_limits: _RateLimits | None = None
    cache_policy: CachePolicy | None = None


class _Update(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)
    name: Name | None = None
    scopes: Scopes | None = None
    expires_at: Expiry | None = None
    no_log: StrictBool | None = None
    revoked: StrictBool | None = None
    allowed_models: Patterns | None = None
    blocked_models: Patterns | None = None
    rate_limits: _RateLimits | None = None
    cache_policy: CachePolicy | None = None


def _limits_doc(limits: _RateLimits | None) -> dict[str, int]:
    """The stored shape: only the limits that are set (``{}``: no limit)."""
    return {} if limits is None else limits.model_dump(exclude_none=True)


def _future(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ApiError(400, "Invalid request: expiresAt: must be in the future", param="expiresAt")


def _public(row: asyncpg.Record) -> dict[str, Any]:
    expires_at: datetime | None = row["expires_at"]
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["key_prefix"],
        "scopes": list(row["scopes"]),
        "revoked": row["revoked"],
        "expiresAt": None if expires_at is None else expires_at.isoformat(),
        "noLog": row["no_log"],
        "allowedModels": list(row["allowed_models"]),
        "blockedModels": list(row["blocked_models"]),
        "rateLimits": RateLimits.parse(row["rate_limits"]).to_json(),
        "cachePolicy": row["cache_policy"],
        "createdAt": row["created_at"].isoformat(),
    }


def _not_found(key_id: str) -> ApiError:
    return ApiError(404, f"API key not found: {key_id}", code="key_not_found")


@router.get("")
async def list_keys(ctx: ContextDep) -> Response:
    """``{"keys": [...], "total": n}``, newest first; never a key or a hash."""
    rows = await ctx.pool.fetch(f"{_SELECT} ORDER BY created_at DESC, id")
    return json_response({"keys": [_public(r) for r in rows], "total": len(rows)})


@router.post("")
async def create_key(request: Request, ctx: ContextDep) -> Response:
    """201 with the key's public fields plus ``key``, the only time the clear key is ever shown."""
    body = await parse_body(request, _Create)
    _future(body.expires_at)
    key = generate_api_key()
    key_id = str(uuid.uuid4())
    async with config_change(ctx) as conn:
        row = await conn.fetchrow(
            _INSERT,
            key_id,
            body.name,
            hash_api_key(key),
            key[:PREFIX_LENGTH],
            body.scopes,
            body.expires_at,
            body.no_log,
            body.allowed_models,
            body.blocked_models,
            _limits_doc(body.rate_limits),
            body.cache_policy,
        )
    assert row is not None
    return json_response({**_public(row), "key": key}, status=201)


@router.get("/{key_id}")
async def get_key(key_id: str, ctx: ContextDep) -> Response:
    row = await ctx.pool.fetchrow(f"{_SELECT} WHERE id = $1", key_id)
    if row is None:
        raise _not_found(key_id)
    return json_response(_public(row))


@router.api_route("/{key_id}", methods=["PATCH", "PUT"])
async def update_key(key_id: str, request: Request, ctx: ContextDep) -> Response:
    body = await parse_body(request, _Update)
    _future(body.expires_at)
    clear_expiry = "expires_at" in body.model_fields_set and body.expires_at is None
    async with config_change(ctx) as conn:
        row = await conn.fetchrow(
            _UPDATE,
            key_id,
            body.name,
            body.scopes,
            clear_expiry,
            body.expires_at,
            body.no_log,
            body.revoked,
            body.allowed_models,
            body.blocked_models,
            _limits_doc(body.rate_limits) if "rate_limits" in body.model_fields_set else None,
            "cache_policy" in body.model_fields_set,
            body.cache_policy,
        )
        if row is None:
            raise _not_found(key_id)
    return json_response(_public(row))


@router.delete("/{key_id}")
async def delete_key(key_id: str, ctx: ContextDep) -> Response:
    async with config_change(ctx) as conn:
        deleted = await conn.fetchval("DELETE FROM api_keys WHERE id = $1 RETURNING id", key_id)
        if deleted is None:
            raise _not_found(key_id)
    return json_response({"id": key_id, "message": "Key deleted successfully"})
