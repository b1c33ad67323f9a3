"""``/api/models/availability`` and ``/api/rate-limits``: what the data plane can serve right now, and why not.

Both read the state the executors share in Redis (:mod:`omniroute_core.health`, :mod:`omniroute_core.ratelimits`)
for the reset epoch of the current configuration, and the configuration itself from PostgreSQL.

- ``GET /api/models/availability`` (``?all=true`` adds providers without connections): every provider with its
  breaker, every connection with its state (:mod:`omniroute_dashboard.health_view`), cooldown and lockouts, and
  every known model of the provider with how many connections could serve it now.
- ``POST /api/models/availability {"model": "..."}``: the model string resolved exactly as a request would be
  (:func:`omniroute_core.resolution.expand`: aliases, combos, catalog inference), then each target with whether it
  would be tried or why it is skipped. The order shown is the configured one (combo step order, connection
  priority); strategies such as round-robin reorder per request. A name that does not resolve is the same 400/404
  a request gets; ``available`` is false when no target would be tried, with ``retryAfterMs`` until the first
  block ends.
- ``GET /api/rate-limits`` (``?provider=`` filters): per connection, the newest rate-limit headers a provider sent
  (requests/tokens limit, remaining, reset) and the 429 cooldown.

Redis being unreachable is a 503: without it there is nothing true to report.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from redis.exceptions import RedisError

from omniroute_core import jsonx
from omniroute_core.catalog import ProviderSpec
from omniroute_core.health import connection_key, decode_health, health_hash, reset_epoch
from omniroute_core.ratelimits import rate_limit_key
from omniroute_core.resolution import ResolveError, expand, provider_by_id, provider_for_prefix
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import Context, ContextDep
from omniroute_dashboard.fields import ModelId
from omniroute_dashboard.health_view import HealthView, iso, rate_limit_view
from omniroute_dashboard.store import load_snapshot
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["rate_limits_router", "router"]

router = APIRouter(prefix="/api/models/availability", dependencies=[Depends(require_admin)])
rate_limits_router = APIRouter(prefix="/api/rate-limits", dependencies=[Depends(require_admin)])


class _Check(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: ModelId


async def _state(ctx: Context) -> tuple[ConfigSnapshot, HealthView]:
    snap = await load_snapshot(ctx.pool)
    try:
        raw = await ctx.redis.hgetall(health_hash(reset_epoch(snap.settings)))
    except (RedisError, OSError) as exc:
        raise ApiError(503, f"Redis, where breakers and cooldowns are kept, is unreachable: {exc}") from exc
    records = {(k.decode() if isinstance(k, bytes) else k): decode_health(v) for k, v in raw.items()}
    return snap, HealthView(records, int(time.time() * 1000))


def _prefix(spec: ProviderSpec, snap: ConfigSnapshot) -> str:
    node = snap.nodes_by_id.get(spec.id)
    return node.prefix if node is not None else spec.id


def _models(spec: ProviderSpec, snap: ConfigSnapshot, view: HealthView) -> list[str]:
    custom = [m.model for m in snap.custom_models if m.provider == spec.id]
    locked = [lock["model"] for conn in snap.connections_by_provider.get(spec.id, ()) for lock in view.lockouts(conn)]
    return list(dict.fromkeys([*spec.models, *custom, *locked]))


def _provider_report(spec: ProviderSpec, snap: ConfigSnapshot, view: HealthView) -> dict[str, Any]:
    conns = snap.connections_by_provider.get(spec.id, ())
    connections = [view.connection(c) for c in conns]
    models = []
    for model in _models(spec, snap, view):
        states = [view.target(c, model) for c in conns if c.is_active]
        usable = sum(1 for state, _, reason in states if not reason)
        blocked = [(until, reason) for _, until, reason in states if reason]
        models.append(
            {
                "id": f"{_prefix(spec, snap)}/{model}",
                "model": model,
                "state": "available" if usable else "unavailable",
                "availableConnections": usable,
                "reason": None if usable else (min(blocked)[1] if blocked else "no active connection"),
            }
        )
    live = [c for c in connections if c["state"] in ("available", "half_open")]
    breaker = view.provider(spec.id)
    if not conns:
        state = "not_configured"
    elif breaker["state"] == "open":
        state = "breaker_open"
    else:
        state = "available" if live else "unavailable"
    return {
        "provider": spec.id,
        "prefix": _prefix(spec, snap),
        "kind": "node" if spec.id in snap.node_specs else "catalog",
        "state": state,
        "breaker": breaker,
        "connections": connections,
        "models": models,
    }


@router.get("")
async def availability(ctx: ContextDep, all: Annotated[bool, Query()] = False) -> Response:
    snap, view = await _state(ctx)
    specs = [*ctx.catalog.providers.values(), *snap.node_specs.values()]
    if not all:
        specs = [s for s in specs if snap.connections_by_provider.get(s.id)]
    providers = [_provider_report(spec, snap, view) for spec in specs]
    states = [c["state"] for p in providers for c in p["connections"]]
    locked = sum(len(c["lockouts"]) for p in providers for c in p["connections"])
    summary = {
        "providers": len(providers),
        "connections": len(states),
        **{state: states.count(state) for state in sorted(set(states))},
        "lockedOutModels": locked,
    }
    return json_response(
        {
            "checkedAt": iso(view.now_ms),
            "resetEpoch": reset_epoch(snap.settings),
            "summary": summary,
            "providers": providers,
        }
    )


@router.post("")
async def check_model(request: Request, ctx: ContextDep) -> Response:
    body = await parse_body(request, _Check)
    snap, view = await _state(ctx)
    try:
        expansion = expand(body.model, ctx.catalog, snap)
    except ResolveError as exc:
        raise ApiError(exc.error.status, exc.error.message, param="model", code=exc.error.code) from exc
    named = expansion.named
    targets: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = [
        {"step": s.step, "combos": list(s.path), "state": "unroutable", "reason": s.error.message}
        for s in expansion.skipped
    ]
    seen: set[str] = set()
    blocks: list[int] = []
    for target in expansion.targets:
        if target.key in seen:
            continue
        seen.add(target.key)
        state, until, reason = view.target(target.connection, target.model)
        entry = {
            "provider": target.provider.id,
            "prefix": _prefix(target.provider, snap),
            "connectionId": target.connection.id,
            "connectionName": target.connection.name,
            "model": target.model,
            "state": state,
        }
        if reason:
            skipped.append({**entry, "reason": reason, "until": iso(until)})
            if until:
                blocks.append(until)
        else:
            targets.append(entry)
    resolution = {
        "aliases": list(named.aliases),
        "combo": named.combo.name if named.combo else None,
        "strategy": named.combo.strategy if named.combo else None,
        "provider": named.provider.id if named.provider else None,
        "upstreamModel": named.model or None,
    }
    retry = max(0, min(blocks) - view.now_ms) if blocks and not targets else None
    return json_response(
        {
            "model": body.model,
            "available": bool(targets),
            "resolution": resolution,
            "targets": targets,
            "skipped": skipped,
            "retryAfterMs": retry,
            "checkedAt": iso(view.now_ms),
        }
    )


@rate_limits_router.get("")
async def rate_limits(ctx: ContextDep, provider: Annotated[str | None, Query()] = None) -> Response:
    snap, view = await _state(ctx)
    conns = list(snap.connections)
    if provider:
        spec = provider_by_id(provider, ctx.catalog, snap) or provider_for_prefix(provider, ctx.catalog, snap)
        wanted = spec.id if spec is not None else provider
        conns = [c for c in conns if c.provider == wanted]
    try:
        raw = await ctx.redis.mget([rate_limit_key(c.id) for c in conns]) if conns else []
    except (RedisError, OSError) as exc:
        raise ApiError(503, f"Redis, where rate-limit records are kept, is unreachable: {exc}") from exc
    entries = []
    for conn, value in zip(conns, raw, strict=True):
        try:
            record = jsonx.loads(value) if value else None
        except jsonx.JSONDecodeError:
            record = None
        entries.append(
            rate_limit_view(
                conn, record if isinstance(record, dict) else None, view.get(connection_key(conn.id)), view.now_ms
            )
        )
    entries.sort(key=lambda e: (e["provider"], e["name"], e["connectionId"]))
    return json_response({"connections": entries, "total": len(entries), "checkedAt": iso(view.now_ms)})
