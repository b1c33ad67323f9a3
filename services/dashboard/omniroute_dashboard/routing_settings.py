"""``/api/settings/routing``: the gateway-wide routing defaults: account selection and the retry/fallback knobs.

Stored in the ``settings`` row ``routing`` and so published in the config snapshot, where the executor reads it
for every request (``omniroute_executor.routing.plan``); a combo's own ``config`` overrides the knobs for
requests through that combo. Fields (all optional; what is absent keeps the executor's default, listed in
:data:`DEFAULTS`):

- ``accountStrategy``: how a provider's connections (accounts) are ordered: ``fill-first`` / ``priority`` (by
  connection priority), ``round-robin`` (rotating every ``stickyLimit`` requests), ``least-used``, ``random``,
  ``p2c`` (power of two choices), ``latency-optimized``, ``cost-optimized``, ``weighted``;
- ``stickyLimit``: requests served by one account before round-robin moves on;
- ``providers``: ``{"<provider id>": {"accountStrategy", "stickyLimit", "maxConcurrent", "maxQueued",
  "queueTimeoutMs"}}``, per-provider overrides of those two, plus the provider's concurrency queue in the
  executor (requests in flight, requests waiting for a slot, longest wait; beyond them an attempt fails at once
  with 503 and ``Retry-After`` and a combo moves on; defaults: the executor's ``UPSTREAM_MAX_CONCURRENT``,
  ``UPSTREAM_MAX_QUEUED``, ``UPSTREAM_QUEUE_TIMEOUT_S``);
- ``maxRetries``, ``retryDelayMs``, ``maxRetryAfterMs``, ``timeoutMs``, ``fallbackDelayMs``, ``maxAttempts``.

``PUT`` merges the given fields into the stored ones (``providers`` entries too; ``null`` removes a field or a
provider's override); ``GET`` shows the stored values over the defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, check_provider_ids, config_change
from omniroute_dashboard.store import read_setting, write_setting
from omniroute_dashboard.web import json_response, parse_body

__all__ = ["DEFAULTS", "router"]

router = APIRouter(prefix="/api/settings/routing", dependencies=[Depends(require_admin)])

_KEY = "routing"
# the executor's defaults (omniroute_executor.routing.plan.RouteConfig); services share no code
DEFAULTS: dict[str, Any] = {
    "accountStrategy": "fill-first",
    "stickyLimit": 1,
    "maxRetries": 0,
    "retryDelayMs": 250,
    "maxRetryAfterMs": 10_000,
    "timeoutMs": 0,
    "fallbackDelayMs": 0,
    "maxAttempts": 10,
}

Strategy = Literal[
    "fill-first", "priority", "round-robin", "least-used", "random", "p2c", "latency-optimized",
    "cost-optimized", "weighted",
]  # fmt: skip
Millis = Annotated[StrictInt, Field(ge=0, le=3_600_000)]


class _Provider(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accountStrategy: Strategy | None = None
    stickyLimit: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    maxConcurrent: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    maxQueued: Annotated[StrictInt, Field(ge=0, le=1_000_000)] | None = None
    queueTimeoutMs: Millis | None = None


class _Routing(BaseModel):
    # the API's camelCase names: the stored document is what the executor reads
    model_config = ConfigDict(extra="forbid")
    accountStrategy: Strategy | None = None
    stickyLimit: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    providers: dict[Annotated[str, Field(min_length=1, max_length=100)], _Provider | None] | None = None
    maxRetries: Annotated[StrictInt, Field(ge=0, le=10)] | None = None
    retryDelayMs: Millis | None = None
    maxRetryAfterMs: Millis | None = None
    timeoutMs: Millis | None = None
    fallbackDelayMs: Millis | None = None
    maxAttempts: Annotated[StrictInt, Field(ge=1, le=50)] | None = None


def _public(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        **DEFAULTS,
        **{k: v for k, v in stored.items() if k != "providers"},
        "providers": stored.get("providers", {}),
    }


@router.get("")
async def get_routing(ctx: ContextDep) -> Response:
    async with ctx.pool.acquire() as conn:
        return json_response(_public(await read_setting(conn, _KEY)))


@router.put("")
async def put_routing(request: Request, ctx: ContextDep) -> Response:
    body = await parse_body(request, _Routing)
    given = body.model_dump(exclude_unset=True)
    async with config_change(ctx) as conn:
        await check_provider_ids(ctx, conn, given.get("providers") or {})
        stored = await read_setting(conn, _KEY, lock=True)
        for name, value in given.items():
            if name == "providers":
                continue
            if value is None:
                stored.pop(name, None)
            else:
                stored[name] = value
        providers: dict[str, Any] = dict(stored.get("providers") or {})
        for provider_id, override in (given.get("providers") or {}).items():
            if override is None:
                providers.pop(provider_id, None)
                continue
            merged = {**providers.get(provider_id, {}), **override}
            providers[provider_id] = {k: v for k, v in merged.items() if v is not None}
        stored["providers"] = {k: v for k, v in providers.items() if v}
        await write_setting(conn, _KEY, stored)
    return json_response(_public(stored))
