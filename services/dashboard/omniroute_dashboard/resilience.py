"""``/api/resilience``: circuit-breaker and cooldown thresholds per profile, and resetting every breaker.

The state lives in the ``settings`` row ``resilience`` and so travels in the config snapshot:
``{"profiles": {"provider": {...}, "connection": {...}}, "resetEpoch": n}``. A profile's fields (positive
integers): ``failureThreshold`` (consecutive failures that open the breaker), ``cooldownMs`` (how long it stays
open before one probe), ``baseBackoffMs`` / ``maxBackoffMs`` (the 429 cooldown when the provider names no
wait), ``probeTimeoutMs``, and for the connection profile ``lockoutMs`` (how long a model the provider refused
with 401/403/404 is not tried on that connection). ``PUT`` merges the given fields into the stored ones; ``GET``
shows them over the executor's defaults (mirrored in :data:`DEFAULTS`).

``POST /api/resilience/reset`` increments ``resetEpoch``: executors keep breaker and cooldown records in Redis
under the epoch, so each replica starts from clean records as soon as it applies the new snapshot (NATS KV
push, well under a second).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, config_change
from omniroute_dashboard.store import read_setting, write_setting
from omniroute_dashboard.web import json_response, parse_body

__all__ = ["DEFAULTS", "router"]

router = APIRouter(prefix="/api/resilience", dependencies=[Depends(require_admin)])

_KEY = "resilience"
# the executor's defaults (omniroute_executor.resilience.breaker.DEFAULT_PROFILES); services share no code
DEFAULTS: dict[str, dict[str, int]] = {
    "provider": {
        "failureThreshold": 10,
        "cooldownMs": 30_000,
        "baseBackoffMs": 1_000,
        "maxBackoffMs": 300_000,
        "probeTimeoutMs": 60_000,
    },
    "connection": {
        "failureThreshold": 3,
        "cooldownMs": 15_000,
        "baseBackoffMs": 1_000,
        "maxBackoffMs": 300_000,
        "probeTimeoutMs": 60_000,
        "lockoutMs": 300_000,
    },
}

Positive = Annotated[StrictInt, Field(ge=1, le=86_400_000)]


class _Profile(BaseModel):
    # the API's camelCase names: the stored document is what the executor reads
    model_config = ConfigDict(extra="forbid")
    failureThreshold: Annotated[StrictInt, Field(ge=1, le=10_000)] | None = None
    cooldownMs: Positive | None = None
    baseBackoffMs: Positive | None = None
    maxBackoffMs: Positive | None = None
    probeTimeoutMs: Positive | None = None
    lockoutMs: Positive | None = None


class _Profiles(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: _Profile | None = None
    connection: _Profile | None = None


class _Update(BaseModel):
    model_config = ConfigDict(extra="ignore")
    profiles: _Profiles


def _public(stored: dict[str, Any]) -> dict[str, Any]:
    overrides = stored.get("profiles") or {}
    return {
        "profiles": {name: {**base, **(overrides.get(name) or {})} for name, base in DEFAULTS.items()},
        "resetEpoch": int(stored.get("resetEpoch") or 0),
    }


@router.get("")
async def get_resilience(ctx: ContextDep) -> Response:
    """``{"profiles": {"provider": {...}, "connection": {...}}, "resetEpoch": n}`` (defaults filled in)."""
    async with ctx.pool.acquire() as conn:
        return json_response(_public(await read_setting(conn, _KEY)))


@router.put("")
async def update_resilience(request: Request, ctx: ContextDep) -> Response:
    """Merge ``{"profiles": {name: {field: value}}}`` into the stored thresholds; 400 for unknown names/fields."""
    body = await parse_body(request, _Update)
    async with config_change(ctx) as conn:
        stored = await read_setting(conn, _KEY, lock=True)
        profiles = dict(stored.get("profiles") or {})
        for name, given in body.profiles.model_dump(exclude_none=True).items():
            profiles[name] = {**(profiles.get(name) or {}), **given}
        stored["profiles"] = profiles
        await write_setting(conn, _KEY, stored)
    return json_response(_public(stored))


@router.post("/reset")
async def reset_resilience(ctx: ContextDep) -> Response:
    """Close every circuit breaker and end every cooldown on every executor replica."""
    async with config_change(ctx) as conn:
        stored = await read_setting(conn, _KEY, lock=True)
        stored["resetEpoch"] = int(stored.get("resetEpoch") or 0) + 1
        await write_setting(conn, _KEY, stored)
    return json_response({"reset": True, "resetEpoch": stored["resetEpoch"]})
