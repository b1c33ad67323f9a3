"""The vector store contract, run against both engines: Qdrant's in-process engine (the default) and
qdrant-client (a Qdrant server in production; its local mode here, the same client API)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from omniroute_edge.semantic import ClientStore, EdgeStore, StoredPoint, VectorStore, space_name

SPACE = space_name("test/model")
NOW = 1_000_000.0


def point(vector: list[float], *, scope: str = "s", sig: str = "g", key: str = "", exp: float = NOW + 60,
          at: float = NOW) -> StoredPoint:  # fmt: skip
    return StoredPoint(str(uuid.uuid4()), vector, scope, sig, key or uuid.uuid4().hex, exp, at)


@pytest.fixture(params=["edge", "client"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    chosen: VectorStore = (
        EdgeStore(str(tmp_path / "q"))
        if request.param == "edge"
        else ClientStore(AsyncQdrantClient(":memory:"), payload_indexes=False)
    )
    await chosen.open()
    yield chosen
    await chosen.close()


async def search(store: VectorStore, vector: list[float], *, scope: str = "s", sig: str = "g",
                 now: float = NOW, threshold: float = 0.9) -> str | None:  # fmt: skip
    found = await store.search(SPACE, vector, scope=scope, signature=sig, now=now, threshold=threshold)
    return found.key if found else None


async def test_a_search_finds_only_its_scope_and_signature_above_the_threshold(store: VectorStore) -> None:
    assert await search(store, [1.0, 0.0, 0.0]) is None  # nothing stored yet: no space
    await store.upsert(SPACE, point([1.0, 0.0, 0.0], key="k1"))
    await store.upsert(SPACE, point([1.0, 0.0, 0.0], scope="other", key="k2"))
    await store.upsert(SPACE, point([1.0, 0.0, 0.0], sig="other", key="k3"))
    assert await search(store, [1.0, 0.05, 0.0]) == "k1"
    assert await search(store, [1.0, 0.05, 0.0], scope="other") == "k2"
    assert await search(store, [1.0, 0.05, 0.0], sig="other") == "k3"
    assert await search(store, [1.0, 0.05, 0.0], scope="nobody") is None
    assert await search(store, [0.0, 1.0, 0.0]) is None  # cosine 0
    assert await search(store, [1.0, 0.6, 0.0], threshold=0.9) is None  # cosine ~0.86
    assert await search(store, [1.0, 0.6, 0.0], threshold=0.8) == "k1"


async def test_the_closest_point_wins(store: VectorStore) -> None:
    await store.upsert(SPACE, point([1.0, 0.2, 0.0], key="far"))
    await store.upsert(SPACE, point([1.0, 0.0, 0.0], key="near"))
    assert await search(store, [1.0, 0.01, 0.0], threshold=0.5) == "near"


async def test_expired_points_never_match_and_a_sweep_removes_them(store: VectorStore) -> None:
    await store.upsert(SPACE, point([1.0, 0.0], key="old", exp=NOW + 1))
    await store.upsert(SPACE, point([0.0, 1.0], key="live", exp=NOW + 100))
    assert await search(store, [1.0, 0.0], now=NOW) == "old"
    assert await search(store, [1.0, 0.0], now=NOW + 2) is None
    assert await store.sweep(NOW + 2, max_points=100) == 1
    assert await store.count() == 1


async def test_a_sweep_keeps_the_newest_points_within_the_cap(store: VectorStore) -> None:
    for i in range(5):
        await store.upsert(SPACE, point([1.0, float(i)], key=f"k{i}", at=NOW + i))
    assert await store.sweep(NOW, max_points=2) == 3
    assert await store.count() == 2
    assert await search(store, [1.0, 4.0], threshold=0.999) == "k4"
    assert await search(store, [1.0, 0.0], threshold=0.999) is None


async def test_upserting_the_same_id_overwrites_and_delete_removes(store: VectorStore) -> None:
    first = point([1.0, 0.0], key="a")
    await store.upsert(SPACE, first)
    await store.upsert(SPACE, StoredPoint(first.id, [1.0, 0.0], "s", "g", "b", NOW + 60, NOW))
    assert await store.count() == 1
    assert await search(store, [1.0, 0.0]) == "b"
    await store.delete(SPACE, first.id)
    assert await search(store, [1.0, 0.0]) is None


async def test_clear_drops_every_space(store: VectorStore) -> None:
    await store.upsert(SPACE, point([1.0, 0.0]))
    other = space_name("another/model")
    await store.upsert(other, point([1.0, 0.0, 0.0, 0.0]))
    assert await store.count() == 2
    await store.clear()
    assert await store.count() == 0
    assert await search(store, [1.0, 0.0]) is None
    await store.upsert(SPACE, point([1.0, 0.0], key="again"))  # usable after a clear
    assert await search(store, [1.0, 0.0]) == "again"


async def test_the_in_process_engine_keeps_points_across_restarts_and_locks_its_folder(tmp_path: Path) -> None:
    folder = str(tmp_path / "q")
    first = EdgeStore(folder)
    await first.open()
    await first.upsert(SPACE, point([1.0, 0.0], key="kept"))
    second = EdgeStore(folder)
    with pytest.raises(RuntimeError, match="in use by another process"):
        await second.open()
    await second.close()
    await first.close()
    again = EdgeStore(folder)
    await again.open()
    try:
        assert await search(again, [1.0, 0.0]) == "kept"
    finally:
        await again.close()


async def test_without_a_path_the_engine_uses_a_temporary_folder_it_removes() -> None:
    store = EdgeStore("")
    await store.open()
    await store.upsert(SPACE, point([1.0, 0.0], key="tmp"))
    root = store._root
    assert root is not None and root.exists()
    await store.close()
    assert not root.exists()
