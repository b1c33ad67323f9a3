"""freeze_startup_heap: start-up objects leave the collector's scans; garbage is collected first, not frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from omniroute_core.heap import freeze_startup_heap


@pytest.fixture
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


def test_live_objects_are_frozen_and_later_ones_are_not(unfreeze: None) -> None:
    kept = [{"n": i} for i in range(1000)]
    frozen = freeze_startup_heap("test")
    assert frozen >= 1000 and gc.get_freeze_count() == frozen
    assert not any(obj is kept for obj in gc.get_objects())  # moved out of every generation
    later = [{"n": i} for i in range(10)]
    assert any(obj is later for obj in gc.get_objects(generation=0))


def test_garbage_is_collected_before_the_freeze(unfreeze: None) -> None:
    cycle = _Node()
    ref = weakref.ref(cycle)
    del cycle
    freeze_startup_heap("test")
    assert ref() is None  # collected by the pass before freezing, not kept forever in the permanent generation


def test_a_full_collection_afterwards_skips_the_frozen_heap(unfreeze: None) -> None:
    kept = [[i] for i in range(50_000)]
    freeze_startup_heap("test")
    # a full pass now finds only what was allocated since: the 50,000 lists are not counted as collected or scanned
    assert gc.collect() == 0
    assert len(gc.get_objects()) < 50_000 and len(kept) == 50_000
