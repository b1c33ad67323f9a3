"""The vector store seam of the semantic tier: a narrow protocol with two engines behind it.

- :class:`~omniroute_edge.semantic._edge_store.EdgeStore`: Qdrant's engine in-process (``qdrant-edge-py``), one
  shard per embedding model under ``QDRANT_PATH`` (or a temporary folder), the default. Single-process: the
  folder is locked, so each edge replica needs its own.
- :class:`~omniroute_edge.semantic._client_store.ClientStore`: a Qdrant server (``QDRANT_URL``) through
  ``qdrant-client``, one collection per embedding model, shared by every edge replica.

A point is one stored question: its vector, the hash of everything that must match exactly (``scope``), the hash
of its content signature (``signature``, see :mod:`._match`), the exact-tier key of its reply, and when it
expires. Every search filters on scope, signature and expiry, so the vector score only ranks questions that
already agree on everything else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Candidate", "StoredPoint", "VectorStore", "space_name"]


@dataclass(frozen=True, slots=True)
class StoredPoint:
    id: str  # a UUID derived from the reply's exact-tier key: storing the same entry twice overwrites it
    vector: list[float]
    scope: str
    signature: str
    key: str
    expires_at: float  # unix seconds
    stored_at: float


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    score: float
    key: str


class VectorStore(Protocol):
    async def open(self) -> None:
        """Acquire the storage (raises when it cannot be used, e.g. a folder locked by another process)."""

    async def search(
        self, space: str, vector: list[float], *, scope: str, signature: str, now: float, threshold: float
    ) -> Candidate | None:
        """The closest live point of ``space`` with this scope and signature scoring at least ``threshold``."""

    async def upsert(self, space: str, point: StoredPoint) -> None: ...

    async def delete(self, space: str, point_id: str) -> None: ...

    async def sweep(self, now: float, max_points: int) -> int:
        """Drop expired points, then the oldest beyond ``max_points`` per space; returns how many went."""

    async def count(self) -> int: ...

    async def clear(self) -> None:
        """Drop every point of every space."""

    async def close(self) -> None: ...


def space_name(model: str) -> str:
    """A storage name for an embedding model's vectors (models differ in dimensions and geometry)."""
    return "omniroute_semantic_" + hashlib.sha256(model.encode()).hexdigest()[:16]
