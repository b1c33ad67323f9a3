"""The compliance audit log: every login attempt and every change made through ``/api``, with actor and address.

One plain ASGI middleware records each mutating request (POST, PUT, PATCH, DELETE under ``/api/``) after it
completes: who made it (the dashboard session, the admin API key's id, or ``anonymous`` for a login attempt),
from which address (the rightmost ``X-Forwarded-For`` entry, which the edge appends, else the peer), what it
did (method, path, status) and the request body with every secret redacted. Reads are not recorded.
``GET /api/compliance/audit-log`` returns the newest entries.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from omniroute_core import jsonx
from omniroute_core.crypto import hash_api_key
from omniroute_core.migrate import migrate
from omniroute_dashboard.auth import SESSION_COOKIE, require_admin
from omniroute_dashboard.context import Context, ContextDep
from omniroute_dashboard.credentials import session_valid
from omniroute_dashboard.web import json_response

__all__ = ["AuditMiddleware", "ensure_audit_schema", "redact", "router"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COMPONENT = "dashboard-audit"
STEPS: tuple[str, ...] = (
    """
    CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        ts timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        actor_kind text NOT NULL,
        ip text NOT NULL,
        method text NOT NULL,
        path text NOT NULL,
        status integer NOT NULL,
        details jsonb NOT NULL DEFAULT '{}'::jsonb
    );
    CREATE INDEX audit_log_ts ON audit_log (ts DESC);
    """,
)
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SECRET = re.compile(r"(password|secret|token|authorization|api[_-]?key|^key$|credential)", re.IGNORECASE)
_MAX_DETAILS = 16 * 1024
REDACTED = "[redacted]"
# the password part of a URL's userinfo (``http://user:password@proxy:3128``). The pattern starts at the literal
# "://" and its classes stop at "/", so a search is linear in the text: a scheme part before it ("[a-z][a-z0-9+.-]*")
# made every position of a long word a starting point, quadratic in its length (a 100 kB prompt took minutes).
# The password runs to the last "@" of the authority, as urlsplit reads it: a raw "@" in it ("p@ss") is common
_URL_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^/\s]*@")

router = APIRouter(prefix="/api/compliance", dependencies=[Depends(require_admin)])


async def ensure_audit_schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, COMPONENT, STEPS)
    finally:
        await conn.close()


def redact(value: Any) -> Any:
    """``value`` with every member whose name looks like a secret replaced by ``[redacted]`` (recursively), and
    the password of every ``scheme://user:password@host`` URL (a proxy URL) replaced too."""
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\1{REDACTED}@", value)
    return value


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _MUTATING or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        status = 0

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < _MAX_DETAILS:
                body.extend(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        ctx = getattr(scope["app"].state, "ctx", None)
        if not isinstance(ctx, Context):  # not started yet: nothing can change either
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        # resolved before the request runs: a logout ends the very session that made it
        actor = await _actor(ctx, headers)
        await self.app(scope, recording_receive, recording_send)
        if status:
            await _record(ctx, scope, headers, actor, bytes(body), status)


async def _record(
    ctx: Context, scope: Scope, headers: dict[str, str], actor: tuple[str, str], body: bytes, status: int
) -> None:
    forwarded = [p.strip() for p in headers.get("x-forwarded-for", "").split(",") if p.strip()]
    client = scope.get("client")
    ip = forwarded[-1] if forwarded else (str(client[0]) if client else "")
    try:
        details: Any = redact(jsonx.loads(body)) if body else {}
    except jsonx.JSONDecodeError:
        details = {"unparsed": len(body)}
    await ctx.pool.execute(
        "INSERT INTO audit_log (actor, actor_kind, ip, method, path, status, details) VALUES ($1,$2,$3,$4,$5,$6,$7)",
        actor[0],
        actor[1],
        ip,
        scope["method"],
        scope["path"],
        status,
        jsonx.dumps_str(details if isinstance(details, dict) else {"body": details}),
    )


async def _actor(ctx: Context, headers: dict[str, str]) -> tuple[str, str]:
    """(actor, kind): the session, the admin key's id, or anonymous (a login attempt, a refused call)."""
    cookie = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
    if cookie and await session_valid(ctx.pool, cookie):
        return "dashboard", "session"
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        key_id = await ctx.pool.fetchval(
            "SELECT id FROM api_keys WHERE key_hash = $1", hash_api_key(credential.strip())
        )
        if key_id:
            return str(key_id), "api_key"
    return "anonymous", "anonymous"


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


@router.get("/audit-log")
async def audit_log(ctx: ContextDep, limit: int = Query(100, ge=1, le=1000)) -> Response:
    """The newest ``limit`` entries, newest first."""
    rows = await ctx.pool.fetch(
        "SELECT id, ts, actor, actor_kind, ip, method, path, status, details FROM audit_log ORDER BY id DESC LIMIT $1",
        limit,
    )
    entries = [
        {
            "id": r["id"],
            "timestamp": r["ts"].isoformat(),
            "actor": r["actor"],
            "actorKind": r["actor_kind"],
            "ip": r["ip"],
            "action": f"{r['method']} {r['path']}",
            "method": r["method"],
            "path": r["path"],
            "status": r["status"],
            "details": jsonx.loads(r["details"]) if isinstance(r["details"], str) else r["details"],
        }
        for r in rows
    ]
    return json_response({"entries": entries, "count": len(entries)})
