"""The ``GET /api/tags`` listing shape, from model ids (pure: the caller knows which models exist)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omniroute_core import jsonx

__all__ = ["render_tags", "tag_entry"]

_EPOCH = "1970-01-01T00:00:00Z"


def tag_entry(model_id: str, modified_at: str = _EPOCH) -> dict[str, Any]:
    """One listed model. The gateway knows no file size, digest or quantization: they are zero or empty
    rather than invented; ``modified_at`` is the caller's (default the Unix epoch, never a clock)."""
    return {
        "name": model_id,
        "model": model_id,
        "modified_at": modified_at,
        "size": 0,
        "digest": "",
        "details": {
            "parent_model": "",
            "format": "",
            "family": "",
            "families": [],
            "parameter_size": "",
            "quantization_level": "",
        },
    }


def render_tags(model_ids: Iterable[str], modified_at: str = _EPOCH) -> bytes:
    """``{"models": [...]}`` in the given order, duplicates removed."""
    return jsonx.dumps({"models": [tag_entry(m, modified_at) for m in dict.fromkeys(m for m in model_ids if m)]})
