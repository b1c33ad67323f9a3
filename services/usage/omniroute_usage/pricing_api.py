"""``GET /api/pricing`` and ``PUT /api/pricing`` (served by the dashboard through the usage gRPC service).

GET answers ``{"unit": "USD per 1M tokens", "source", "date", "pricing": {provider: {model: {"input", "output",
"cachedInput", "cacheCreation", "reasoning", "source": "default"|"override"}}}}``; overrides for any provider
appear under provider ``"*"``. A ``null`` rate bills at the fallback rate (input for cached / cache creation,
output for reasoning).

PUT takes ``{"model", "provider"?, "input", "output", "cachedInput"?, "cacheCreation"?, "reasoning"?}`` and
answers ``{"success": true, "provider", "model", "price": {...}}``. It applies to events stored from then on.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from omniroute_core.catalog import price_document
from omniroute_usage.api import BadRequest, json_body
from omniroute_usage.pricing import parse_price
from omniroute_usage.pricing_db import PricingSource, save_override

__all__ = ["get_pricing", "set_pricing"]

_ANY_PROVIDER = "*"


def _file_meta() -> dict[str, Any]:
    doc = price_document()
    return {"unit": doc["unit"], "source": doc["source"], "date": doc["date"]}


async def get_pricing(source: PricingSource) -> dict[str, Any]:
    """The merged table, with overrides read fresh from PostgreSQL."""
    await source.reload()
    book = await source.book()
    pricing: dict[str, dict[str, Any]] = {}
    for row in book.table():
        provider = row.pop("provider") or _ANY_PROVIDER
        pricing.setdefault(provider, {})[row.pop("model")] = row
    return {**_file_meta(), "pricing": pricing}


def _name(doc: dict[str, Any], field: str, *, required: bool) -> str:
    value = doc.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise BadRequest(f"{field}: must be a non-empty string of at most 200 characters", field)
    return value.strip()


async def set_pricing(pool: asyncpg.Pool, source: PricingSource, body: bytes) -> dict[str, Any]:
    """Store one override; ``BadRequest`` for a missing model or an invalid rate."""
    doc = json_body(body)
    model = _name(doc, "model", required=True)
    provider = _name(doc, "provider", required=False)
    if provider == _ANY_PROVIDER:
        provider = ""
    try:
        price = parse_price(doc)
    except ValueError as exc:
        raise BadRequest(str(exc), str(exc).split(":", 1)[0]) from exc
    await save_override(pool, provider, model, price)
    await source.reload()
    return {
        "success": True,
        "provider": provider.lower() or _ANY_PROVIDER,
        "model": model.lower(),
        "price": {**price.to_api(), "source": "override"},
    }
