"""``GET /api/models/catalog``: every model the gateway knows, by provider and by type.

Sources: the provider catalog (``omniroute_core/catalog/providers.json``: ``models`` are chat models,
``operationModels`` those of embeddings, images and transcription), provider nodes and custom models. Each provider
says whether it has an active connection (``active``; built-in providers always do): only then do its models serve
requests. Model ids are what a client sends
(``<prefix>/<model>``: the catalog id, or a node's prefix).

Response: ``{"catalog": {<provider id>: {"provider", "name", "kind": "catalog" | "node", "prefixes", "format",
"capabilities", "active", "connections", "models": [{"id", "model", "name", "type", "custom", "reasoning",
"prices"}]}}, "types": {"chat" | "embedding" | "image" | "audio": [model ids]}, "combos": [...], "aliases": {...},
"total": n}``. Filters: ``?type=`` (one of the types), ``?active=true`` (providers with an active connection).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from omniroute_core.catalog import ProviderSpec
from omniroute_core.formats import format_name
from omniroute_core.nodes import MODEL_TYPES
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep
from omniroute_dashboard.store import load_snapshot
from omniroute_dashboard.web import ApiError, json_response

__all__ = ["router"]

router = APIRouter(prefix="/api/models/catalog", dependencies=[Depends(require_admin)])

# catalog operations → model types
_TYPE_OF_OPERATION = {"chat": "chat", "embeddings": "embedding", "images": "image", "transcription": "audio"}


def _provider_entry(spec: ProviderSpec, snap: ConfigSnapshot, *, prefix: str, name: str, kind: str) -> dict[str, Any]:
    conns = snap.connections_by_provider.get(spec.id, ())
    models: list[dict[str, Any]] = []
    custom = {m.model: m for m in snap.custom_models if m.provider == spec.id}
    for operation, model_type in _TYPE_OF_OPERATION.items():
        for model in spec.models_for(operation):
            if model in custom:
                continue
            prices = spec.prices.get(model)
            models.append(
                {
                    "id": f"{prefix}/{model}",
                    "model": model,
                    "name": model,
                    "type": model_type,
                    "custom": False,
                    "reasoning": model in spec.reasoning_models,
                    "prices": dict(prices) if prices else None,
                }
            )
    for added in custom.values():
        models.append(
            {
                "id": f"{prefix}/{added.model}",
                "model": added.model,
                "name": added.name or added.model,
                "type": added.type,
                "custom": True,
                "reasoning": added.reasoning or added.model in spec.reasoning_models,
                "prices": dict(added.prices) or None,
            }
        )
    return {
        "provider": spec.id,
        "name": name,
        "kind": kind,
        "prefixes": [prefix, *(a for a in spec.aliases if a != prefix)],
        "format": format_name(spec.format),
        "capabilities": sorted(spec.capabilities),
        "active": spec.builtin or any(c.is_active for c in conns),
        "connections": len(conns),
        "models": models,
    }


@router.get("")
async def catalog(
    ctx: ContextDep,
    type: Annotated[str | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
) -> Response:
    if type is not None and type not in MODEL_TYPES:
        raise ApiError(400, f"unknown model type {type!r}; one of: {', '.join(MODEL_TYPES)}", param="type")
    snap = await load_snapshot(ctx.pool)
    entries = [
        _provider_entry(spec, snap, prefix=spec.id, name=spec.id, kind="catalog")
        for spec in ctx.catalog.providers.values()
    ]
    for node in snap.nodes:
        spec = snap.node_specs[node.id]
        entries.append(_provider_entry(spec, snap, prefix=node.prefix, name=node.name, kind="node"))
    by_type: dict[str, list[str]] = {t: [] for t in MODEL_TYPES}
    out: dict[str, Any] = {}
    for entry in entries:
        if active and not entry["active"]:
            continue
        if type is not None:
            entry["models"] = [m for m in entry["models"] if m["type"] == type]
            if not entry["models"]:
                continue
        for model in entry["models"]:
            by_type.setdefault(model["type"], []).append(model["id"])
        out[entry["provider"]] = entry
    return json_response(
        {
            "catalog": out,
            "types": by_type,
            "combos": sorted(snap.combos_by_name),
            "aliases": dict(snap.aliases),
            "total": sum(len(e["models"]) for e in out.values()),
        }
    )
