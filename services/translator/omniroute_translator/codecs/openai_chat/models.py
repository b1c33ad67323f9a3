"""The ``GET /v1/models`` listing shape (also ``GET /v1/embeddings`` and ``GET /v1/images/generations``), pure:
the caller knows which models exist."""

from __future__ import annotations

from collections.abc import Iterable

from omniroute_core import jsonx

__all__ = ["render_models"]


def render_models(models: Iterable[tuple[str, str, int]]) -> bytes:
    """``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}`` from
    ``(id, owned_by, created_unix)`` in the given order, duplicates removed."""
    seen: dict[str, tuple[str, int]] = {}
    for model_id, owned_by, created in models:
        if model_id and model_id not in seen:
            seen[model_id] = (owned_by, created)
    data = [{"id": m, "object": "model", "created": c, "owned_by": o} for m, (o, c) in seen.items()]
    return jsonx.dumps({"object": "list", "data": data})
