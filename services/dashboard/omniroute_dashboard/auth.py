"""Login, logout and the guard of every non-public ``/api/*`` route.

A request is an admin when it carries a live ``auth_token`` session cookie (from ``POST /api/auth/login``) or
``Authorization: Bearer <api key>`` for a usable key with the ``admin`` scope. Otherwise: 401 (no or bad
credentials) or 403 (a valid key without the ``admin`` scope), in the error envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from omniroute_core.crypto import hash_api_key
from omniroute_dashboard.context import Context, ContextDep
from omniroute_dashboard.credentials import check_password, create_session, delete_session, session_valid
from omniroute_dashboard.scopes import ADMIN_SCOPE
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["SESSION_COOKIE", "AdminDep", "Principal", "require_admin", "router"]

SESSION_COOKIE = "auth_token"

router = APIRouter()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a dashboard session (``key_id`` None) or an admin API key."""

    kind: str
    key_id: str | None = None


class _LoginBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    password: StrictStr = Field(min_length=1, max_length=1024)


async def require_admin(request: Request, ctx: ContextDep) -> Principal:
    """FastAPI dependency: the calling admin, or ``ApiError`` 401/403."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and await session_valid(ctx.pool, token):
        return Principal("session")
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential:
        return await _key_principal(ctx, credential)
    if token:
        raise ApiError(401, "Session expired or invalid; log in again", code="invalid_session")
    raise ApiError(401, "Authentication required: log in or send an admin API key", code="unauthenticated")


async def _key_principal(ctx: Context, key: str) -> Principal:
    row = await ctx.pool.fetchrow(
        "SELECT id, scopes FROM api_keys WHERE key_hash = $1 AND NOT revoked "
        "AND (expires_at IS NULL OR expires_at > now())",
        hash_api_key(key),
    )
    if row is None:
        raise ApiError(401, "Invalid, revoked or expired API key", code="invalid_api_key")
    if ADMIN_SCOPE not in row["scopes"]:
        raise ApiError(403, "This API key lacks the 'admin' scope", code="insufficient_scope")
    return Principal("api_key", row["id"])


AdminDep = Annotated[Principal, Depends(require_admin)]


@router.post("/api/auth/login")
async def login(request: Request, ctx: ContextDep) -> Response:
    """``{"password"}`` → 200 ``{"success": true}`` and the session cookie; 401 for a wrong password."""
    try:
        body = await parse_body(request, _LoginBody)
    except ApiError:
        ctx.metrics.logins.labels("invalid").inc()
        raise
    if not await check_password(ctx.pool, ctx.settings, body.password):
        ctx.metrics.logins.labels("denied").inc()
        raise ApiError(401, "Invalid password", code="invalid_password")
    ctx.metrics.logins.labels("ok").inc()
    ttl = timedelta(hours=ctx.settings.session_ttl_hours)
    token = await create_session(ctx.pool, ttl)
    response = json_response({"success": True})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
    )
    return response


@router.get("/api/auth/session")
async def session(principal: AdminDep) -> Response:
    """Who the caller is (200), or the guard's 401/403: lets the web UI and other services check a cookie."""
    return json_response({"authenticated": True, "kind": principal.kind, "keyId": principal.key_id})


@router.post("/api/auth/logout")
async def logout(request: Request, ctx: ContextDep) -> Response:
    """Ends the session of the cookie (if any) and clears the cookie; always 200."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await delete_session(ctx.pool, token)
    response = json_response({"success": True})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=ctx.settings.cookie_secure)
    return response
