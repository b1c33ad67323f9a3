"""The ``GET /v1beta/models`` listing shape, from model ids (pure: the caller knows which models exist)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omniroute_core import jsonx

__all__ = ["GENERATION_METHODS", "model_entry", "render_models"]

GENERATION_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def model_entry(model_id: str) -> dict[str, Any]:
    """One ``Model`` resource: ``name`` is ``models/<id>`` (an id already prefixed is not prefixed twice);
    ``displayName`` is the id; the methods are what the gateway serves for every model."""
    bare = model_id.removeprefix("models/")
    return {
        "name": f"models/{bare}",
        "baseModelId": bare,
        "version": "001",
        "displayName": bare,
        "description": bare,
        "supportedGenerationMethods": list(GENERATION_METHODS),
    }


def render_models(model_ids: Iterable[str]) -> bytes:
    """``{"models": [...]}`` in the given order, duplicates removed."""
    seen: dict[str, None] = dict.fromkeys(m.removeprefix("models/") for m in model_ids if m)
    return jsonx.dumps({"models": [model_entry(m) for m in seen]})
