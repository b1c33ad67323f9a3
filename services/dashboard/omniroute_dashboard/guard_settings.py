"""``/api/settings/ip-filter`` and ``/api/rate-limit``: the edge's global guard configuration.

Both live in the ``settings`` table and so travel in the config snapshot to every edge replica:

- ``ipFilter``: ``{"enabled": bool, "allowlist": [...], "blocklist": [...]}``, entries are IP addresses or CIDRs
  (stored normalised, ``10.1.2.3/8`` → ``10.0.0.0/8``). When enabled the edge refuses (403) an address in the
  blocklist and, when the allowlist is not empty, any address outside it, on every route. ``PUT`` merges the given
  fields into the stored ones; a bad entry is a 400 naming it. The dashboard port itself is not filtered (it is
  internal), so an allowlist that locks the operator out of the edge can be undone there.
- ``rateLimit``: ``{"defaults": {"rpm", "tpm", "concurrent"}}``, the limits of every key that does not set its own
  (per field; null = no limit). ``GET /api/rate-limit`` shows them with how the edge enforces them; ``PUT``
  replaces the defaults.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, config_change
from omniroute_dashboard.store import Conn, read_setting, write_setting
from omniroute_dashboard.web import json_response, parse_body

__all__ = ["ip_filter_router", "rate_limit_router"]

ip_filter_router = APIRouter(prefix="/api/settings/ip-filter", dependencies=[Depends(require_admin)])
rate_limit_router = APIRouter(prefix="/api/rate-limit", dependencies=[Depends(require_admin)])

_IP_KEY = "ipFilter"
_RATE_KEY = "rateLimit"
WINDOW_MS = 60_000  # the edge's window (omniroute_edge.ratelimit.WINDOW_MS); services share no code


def _networks(entries: list[str]) -> list[str]:
    out: list[str] = []
    for entry in entries:
        try:
            out.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or CIDR") from exc
    return list(dict.fromkeys(out))


Networks = Annotated[list[StrictStr], Field(max_length=1000), AfterValidator(_networks)]
Limit = Annotated[StrictInt, Field(ge=1, le=1_000_000_000)]


class _IpFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool | None = None
    allowlist: Networks | None = None
    blocklist: Networks | None = None


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpm: Limit | None = None
    tpm: Limit | None = None
    concurrent: Limit | None = None


class _RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: _Limits


def _ip_public(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        "enabled": bool(stored.get("enabled", False)),
        "allowlist": list(stored.get("allowlist") or []),
        "blocklist": list(stored.get("blocklist") or []),
    }


@ip_filter_router.get("")
async def get_ip_filter(ctx: ContextDep) -> Response:
    """``{"enabled", "allowlist", "blocklist"}`` (disabled and empty when never set)."""
    async with ctx.pool.acquire() as conn:
        return json_response(_ip_public(await read_setting(conn, _IP_KEY)))


@ip_filter_router.put("")
async def put_ip_filter(request: Request, ctx: ContextDep) -> Response:
    """Merge the given fields into the filter; 400 for an entry that is not an address or CIDR."""
    body = await parse_body(request, _IpFilter)
    async with config_change(ctx) as conn:
        stored = _ip_public(await read_setting(conn, _IP_KEY, lock=True))
        stored.update(body.model_dump(exclude_none=True))
        await write_setting(conn, _IP_KEY, stored)
    return json_response(stored)


def _limits_public(stored: dict[str, Any]) -> dict[str, int | None]:
    raw = stored.get("defaults") or {}
    return {name: raw.get(name) for name in ("rpm", "tpm", "concurrent")}


async def _rate_public(conn: Conn, stored: dict[str, Any]) -> dict[str, Any]:
    keys_with_limits = await conn.fetchval("SELECT count(*) FROM api_keys WHERE rate_limits <> '{}'::jsonb")
    return {
        "defaults": _limits_public(stored),
        "scope": "per API key, shared by every edge replica (Redis)",
        "windowMs": WINDOW_MS,
        "algorithms": {
            "rpm": "sliding log over the last minute",
            "tpm": "sliding log over the last minute; tokens estimated before the call (body bytes / 4 + max tokens)",
            "concurrent": "in-flight counter, released when the reply ends",
        },
        "keysWithOwnLimits": int(keys_with_limits),
    }


@rate_limit_router.get("")
async def get_rate_limit(ctx: ContextDep) -> Response:
    """The global rate-limit configuration: default per-key limits and how the edge enforces them."""
    async with ctx.pool.acquire() as conn:
        return json_response(await _rate_public(conn, await read_setting(conn, _RATE_KEY)))


@rate_limit_router.put("")
async def put_rate_limit(request: Request, ctx: ContextDep) -> Response:
    """Replace the default limits (``{"defaults": {"rpm", "tpm", "concurrent"}}``, null or absent = none)."""
    body = await parse_body(request, _RateLimit)
    stored = {"defaults": body.defaults.model_dump(exclude_none=True)}
    async with config_change(ctx) as conn:
        await write_setting(conn, _RATE_KEY, stored)
        public = await _rate_public(conn, stored)
    return json_response(public)
