"""``POST /api/providers/{id}/test``, ``GET /api/providers/{id}/models`` and ``POST /api/providers/validate``.

Each makes one real, minimal call to the provider through the executor (:mod:`omniroute_dashboard.executor_admin`):
the stored connection's row is passed as read here (its key still encrypted), so a change the data plane has not
picked up yet is tested as stored.

- ``test`` → ``{"valid", "latencyMs", "status" (the provider's HTTP status; null without an answer), "error"?,
  "provider", "connectionId", "testStatus": "active"|"error", "testedAt"}``; the result is recorded on the
  connection (``testStatus``, ``lastTested``, ``lastError`` in ``/api/providers`` answers). A refused key is a
  200 with ``valid: false``, not an error.
- ``models`` → ``{"provider", "connectionId", "models": [{"id", ...}], "source": "live"|"catalog"}`` (``catalog``
  when the provider has no list endpoint); a provider failure is a 502 whose message carries its status and text.
- ``validate`` → the body of ``POST /api/providers`` (``provider``, ``apiKey``, ``baseUrl``, ``headers``,
  ``options``; ``name``
  is optional here), checked like a create, then tested: ``{"valid", "latencyMs", "status", "error"?,
  "provider"}``. An unknown provider is a 400.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from omniroute_core.migrate import migrate
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, check_address
from omniroute_dashboard.executor_admin import AdminDep, call_admin
from omniroute_dashboard.providers import BaseUrl, Headers, Name, Options, Secret, Slug, check_catalog
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["COMPONENT", "STEPS", "ensure_provider_test_schema", "router"]

router = APIRouter(prefix="/api/providers", dependencies=[Depends(require_admin)])

# Its own migration component, so its step never interleaves with other features' steps of ``dashboard``; it
# runs after them (the app migrates ``dashboard`` first), on the table that component created.
COMPONENT = "dashboard-provider-tests"
STEPS: tuple[str, ...] = (
    """
    ALTER TABLE provider_connections
        ADD COLUMN test_status text CHECK (test_status IN ('active', 'error')),
        ADD COLUMN last_tested_at timestamptz,
        ADD COLUMN last_error text;
    """,
)

_ROW = (
    "SELECT id, provider, base_url, api_key_enc, headers, options, "
    "(SELECT version FROM config_version WHERE id = 1) AS config_version FROM provider_connections WHERE id = $1"
)
_VERSION = "SELECT version FROM config_version WHERE id = 1"
_RECORD = (
    "UPDATE provider_connections SET test_status = $2, last_tested_at = now(), last_error = $3 "
    "WHERE id = $1 RETURNING last_tested_at"
)


async def ensure_provider_test_schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, COMPONENT, STEPS)
    finally:
        await conn.close()


class _Candidate(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)
    provider: Slug
    name: Name | None = None
    api_key: Secret = ""
    base_url: BaseUrl = ""
    headers: Headers = Field(default_factory=dict)
    options: Options = Field(default_factory=dict)


async def _stored(ctx: ContextDep, connection_id: str) -> dict[str, Any]:
    row = await ctx.pool.fetchrow(_ROW, connection_id)
    if row is None:
        raise ApiError(404, f"Connection not found: {connection_id}", code="connection_not_found")
    return {
        "connection": {
            "id": row["id"],
            "provider": row["provider"],
            "baseUrl": row["base_url"],
            "apiKeyEnc": row["api_key_enc"],
            "headers": row["headers"],
            "options": row["options"],
        },
        # the executor waits for its snapshot to reach this version (a provider node created just before)
        "configVersion": row["config_version"] or 0,
    }


@router.post("/validate")
async def validate_provider(request: Request, ctx: ContextDep, stub: AdminDep) -> Response:
    """Check a provider config before it is saved: 400 for a malformed body or an unknown provider."""
    body = await parse_body(request, _Candidate)
    check_address(ctx, body.base_url, "baseUrl")
    check_catalog(ctx.catalog, body.provider, body.base_url, body.options)
    candidate = {
        "provider": body.provider,
        "apiKey": body.api_key,
        "baseUrl": body.base_url,
        "headers": body.headers,
        "options": body.options,
    }
    try:
        version = await ctx.pool.fetchval(_VERSION) or 0
        result = await call_admin(stub.TestConnection, {"candidate": candidate, "configVersion": version})
    except ApiError as exc:
        if exc.status == 404:
            raise ApiError(
                400, f"Unknown provider: {body.provider}", param="provider", code="unknown_provider"
            ) from exc
        raise
    return json_response(result)


@router.post("/{connection_id}/test")
async def test_connection(connection_id: str, ctx: ContextDep, stub: AdminDep) -> Response:
    """Test a stored connection with its credentials and record the result on it; 404 for an unknown id."""
    result = await call_admin(stub.TestConnection, await _stored(ctx, connection_id))
    status = "active" if result.get("valid") else "error"
    error = result.get("error") if not result.get("valid") else None
    tested: datetime | None = await ctx.pool.fetchval(_RECORD, connection_id, status, error)
    if tested is None:  # deleted while it was being tested
        raise ApiError(404, f"Connection not found: {connection_id}", code="connection_not_found")
    return json_response(
        {**result, "connectionId": connection_id, "testStatus": status, "testedAt": tested.isoformat()}
    )


@router.get("/{connection_id}/models")
async def list_models(connection_id: str, ctx: ContextDep, stub: AdminDep) -> Response:
    """The provider's live model list (or its catalog models); 404 for an unknown id, 502 when the provider fails."""
    result = await call_admin(stub.ListModels, await _stored(ctx, connection_id))
    if not result.get("ok"):
        raise ApiError(502, f"Model list failed: {result.get('error')}", code="upstream_error")
    return json_response(
        {
            "provider": result["provider"],
            "connectionId": connection_id,
            "models": result["models"],
            "source": result["source"],
        }
    )
