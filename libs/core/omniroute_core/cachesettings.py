"""The gateway's ``cache`` setting, as the control plane stores it and the edge reads it from the snapshot.

``{"policy": ..., "semantic": {"enabled": bool, "threshold": float, "model": str}}``: ``policy`` says which
requests the caches may answer (see :data:`omniroute_core.snapshot.CACHE_POLICIES`); ``semantic`` tunes the
semantic tier: whether it is on, the cosine similarity a stored question must reach to answer a new one, and the
embedding model (any ``provider/model`` the executor serves; the built-in offline ``local`` model by default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_THRESHOLD",
    "MIN_THRESHOLD",
    "SemanticSetting",
    "semantic_setting",
]

# the executor's built-in offline embedding model (all-MiniLM-L6-v2, 384 dimensions)
DEFAULT_EMBEDDING_MODEL = "local/all-minilm-l6-v2"
# calibrated on the paraphrase set (tests/data/semantic_paraphrases.json, tools/calibrate_semantic.py, README)
DEFAULT_THRESHOLD = 0.9
# below this, unrelated questions about one topic match: refused by the control plane
MIN_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class SemanticSetting:
    enabled: bool = True
    threshold: float = DEFAULT_THRESHOLD
    model: str = DEFAULT_EMBEDDING_MODEL

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "threshold": self.threshold, "model": self.model}


def semantic_setting(cache_setting: Any) -> SemanticSetting:
    """The semantic part of a stored ``cache`` setting; a missing or malformed field takes its default."""
    raw = cache_setting.get("semantic") if isinstance(cache_setting, Mapping) else None
    if not isinstance(raw, Mapping):
        return SemanticSetting()
    enabled = raw.get("enabled")
    threshold = raw.get("threshold")
    model = raw.get("model")
    if not (
        isinstance(threshold, int | float)
        and not isinstance(threshold, bool)
        and math.isfinite(threshold)
        and MIN_THRESHOLD <= threshold <= 1
    ):
        threshold = DEFAULT_THRESHOLD
    return SemanticSetting(
        enabled=enabled if isinstance(enabled, bool) else True,
        threshold=float(threshold),
        model=model if isinstance(model, str) and model.strip() else DEFAULT_EMBEDDING_MODEL,
    )
