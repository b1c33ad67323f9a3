"""The built-in ``local`` provider: an offline embedding model shipped in a registry package (see :mod:`._bert`)."""

from __future__ import annotations

from omniroute_executor.local._embedder import BATCH, DIMENSIONS, MAX_INPUTS, LocalEmbedder

__all__ = ["BATCH", "DIMENSIONS", "MAX_INPUTS", "MODEL_ID", "LocalEmbedder"]

# the stable model string of the built-in embedding model (the semantic cache's default)
MODEL_ID = "local/all-minilm-l6-v2"
