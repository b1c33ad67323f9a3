"""The vector store on a Qdrant server (``QDRANT_URL``), through ``qdrant-client``: one collection per embedding
model, shared by every edge replica. The same class runs on qdrant-client's local mode (``location=":memory:"``
or a path), which is how the tests exercise it where no Qdrant server binary can be had; local mode scans every
point in Python for each search, so it is not offered as the in-process engine (see :mod:`._edge_store`).
"""

from __future__ import annotations

import time

from qdrant_client import AsyncQdrantClient, models

from omniroute_edge.semantic._store import Candidate, StoredPoint

__all__ = ["ClientStore"]

_PREFIX = "omniroute_semantic_"
_REFRESH_S = 5.0  # how often an unknown collection is looked up again (another edge may have created it)


class ClientStore:
    def __init__(self, client: AsyncQdrantClient, *, payload_indexes: bool = True) -> None:
        """``payload_indexes``: index the filtered fields (a server needs them; local mode has none and warns)."""
        self._client = client
        self._payload_indexes = payload_indexes
        self._known: set[str] = set()
        self._listed_at = 0.0

    async def open(self) -> None:
        await self._refresh()

    async def search(
        self, space: str, vector: list[float], *, scope: str, signature: str, now: float, threshold: float
    ) -> Candidate | None:
        if not await self._exists(space):
            return None
        where = models.Filter(
            must=[
                models.FieldCondition(key="scope", match=models.MatchValue(value=scope)),
                models.FieldCondition(key="sig", match=models.MatchValue(value=signature)),
                models.FieldCondition(key="exp", range=models.Range(gt=now)),
            ]
        )
        result = await self._client.query_points(
            space, query=vector, query_filter=where, limit=1, score_threshold=threshold, with_payload=True
        )
        for hit in result.points:
            payload = hit.payload or {}
            return Candidate(str(hit.id), float(hit.score), str(payload.get("key", "")))
        return None

    async def upsert(self, space: str, point: StoredPoint) -> None:
        if not await self._exists(space):
            await self._create(space, len(point.vector))
        payload = {
            "scope": point.scope,
            "sig": point.signature,
            "key": point.key,
            "exp": point.expires_at,
            "at": point.stored_at,
        }
        await self._client.upsert(space, [models.PointStruct(id=point.id, vector=point.vector, payload=payload)])

    async def delete(self, space: str, point_id: str) -> None:
        if await self._exists(space):
            await self._client.delete(space, points_selector=models.PointIdsList(points=[point_id]))

    async def sweep(self, now: float, max_points: int) -> int:
        await self._refresh()
        removed = 0
        expired = models.Filter(must=[models.FieldCondition(key="exp", range=models.Range(lte=now))])
        for space in sorted(self._known):
            before = (await self._client.count(space, exact=True)).count
            await self._client.delete(space, points_selector=models.FilterSelector(filter=expired))
            left = (await self._client.count(space, exact=True)).count
            removed += before - left
            if left > max_points:
                oldest, _ = await self._client.scroll(
                    space, limit=left - max_points, order_by=models.OrderBy(key="at"), with_payload=False
                )
                await self._client.delete(space, points_selector=models.PointIdsList(points=[p.id for p in oldest]))
                removed += len(oldest)
        return removed

    async def count(self) -> int:
        await self._refresh()
        return sum([(await self._client.count(space, exact=True)).count for space in sorted(self._known)])

    async def clear(self) -> None:
        await self._refresh()
        for space in sorted(self._known):
            await self._client.delete_collection(space)
        self._known.clear()

    async def close(self) -> None:
        await self._client.close()

    async def _exists(self, space: str) -> bool:
        if space not in self._known and time.monotonic() - self._listed_at > _REFRESH_S:
            await self._refresh()
        return space in self._known

    async def _refresh(self) -> None:
        listed = await self._client.get_collections()
        self._known = {c.name for c in listed.collections if c.name.startswith(_PREFIX)}
        self._listed_at = time.monotonic()

    async def _create(self, space: str, dimensions: int) -> None:
        try:
            await self._client.create_collection(
                space, vectors_config=models.VectorParams(size=dimensions, distance=models.Distance.COSINE)
            )
        except Exception:
            await self._refresh()  # another edge created it first
            if space in self._known:
                return
            raise
        for field, kind in (
            ()
            if not self._payload_indexes
            else (
                ("scope", models.PayloadSchemaType.KEYWORD),
                ("sig", models.PayloadSchemaType.KEYWORD),
                ("exp", models.PayloadSchemaType.FLOAT),
                ("at", models.PayloadSchemaType.FLOAT),
            )
        ):
            await self._client.create_payload_index(space, field, field_schema=kind)
        self._known.add(space)
