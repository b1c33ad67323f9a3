"""The semantic cache tier (see :mod:`._tier`): paraphrases of a cached question, under the same scope, replay its
reply. Built in the app lifespan by :func:`build_semantic_cache`."""

from __future__ import annotations

from omniroute_edge.semantic._build import build_semantic_cache
from omniroute_edge.semantic._client_store import ClientStore
from omniroute_edge.semantic._edge_store import EdgeStore
from omniroute_edge.semantic._embed import Embedder, Embedding, EmbeddingError, ExecutorEmbedder, parse_embedding
from omniroute_edge.semantic._match import same_question, signature
from omniroute_edge.semantic._store import Candidate, StoredPoint, VectorStore, space_name
from omniroute_edge.semantic._tier import Probe, SemanticCache, SemanticLimits, SemanticMetrics, SettingView
from omniroute_edge.semantic._turns import TURNS, TurnShape, split_last_turn

__all__ = [
    "TURNS",
    "Candidate",
    "ClientStore",
    "EdgeStore",
    "Embedder",
    "Embedding",
    "EmbeddingError",
    "ExecutorEmbedder",
    "Probe",
    "SemanticCache",
    "SemanticLimits",
    "SemanticMetrics",
    "SettingView",
    "StoredPoint",
    "TurnShape",
    "VectorStore",
    "build_semantic_cache",
    "parse_embedding",
    "same_question",
    "signature",
    "space_name",
    "split_last_turn",
]
