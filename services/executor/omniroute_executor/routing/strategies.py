"""Ordering strategies: the same functions order a combo's steps and a provider's connections (accounts).

Every strategy returns *all* candidates, best first: the head is the pick, the tail is the fallback order, so a
plan never loses a target because a strategy chose another one. Randomness comes from the ``random.Random`` passed
in and counts from the :class:`RoutingStats` passed in, so the functions are deterministic under test.

- ``priority`` / ``fill-first``: as configured (a combo's step order; connections by ``priority``).
- ``weighted``: a weighted random permutation (weight 0 goes last).
- ``round-robin``: rotate the list one position every ``sticky`` requests of the same group.
- ``random``: a uniform shuffle.
- ``least-used``: fewest requests started by this replica first.
- ``cost-optimized``: cheapest known price first; candidates without a price keep their order after them.
- ``latency-optimized``: lowest measured latency (EWMA) first; unmeasured candidates first so they get measured.
- ``p2c``: power of two choices: of two random candidates the less loaded (in flight, then latency) goes first;
  the rest follow by load.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Candidate", "RoutingStats", "order"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a strategy may look at. ``key`` identifies the target in :class:`RoutingStats`."""

    key: str
    weight: int = 1
    cost: float | None = None


@dataclass(slots=True)
class RoutingStats:
    """Per-replica counters the strategies read: requests started, in flight, latency EWMA, round-robin turns.

    Owned by the engine (one per process). ``alpha`` is the EWMA smoothing factor for latency samples.
    """

    alpha: float = 0.3
    started: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    turns: dict[str, int] = field(default_factory=dict)

    def begin(self, key: str) -> None:
        self.started[key] = self.started.get(key, 0) + 1
        self.in_flight[key] = self.in_flight.get(key, 0) + 1

    def end(self, key: str, latency_ms: float | None) -> None:
        """One attempt of ``key`` finished; ``latency_ms`` (time to first byte) is None when it failed."""
        self.in_flight[key] = max(0, self.in_flight.get(key, 0) - 1)
        if latency_ms is not None:
            old = self.latency_ms.get(key)
            self.latency_ms[key] = latency_ms if old is None else old + self.alpha * (latency_ms - old)

    def next_turn(self, group: str) -> int:
        turn = self.turns.get(group, 0)
        self.turns[group] = turn + 1
        return turn


def order(
    strategy: str,
    items: Sequence[T],
    candidate: Callable[[T], Candidate],
    *,
    stats: RoutingStats,
    rng: random.Random,
    group: str,
    sticky: int = 1,
) -> list[T]:
    """``items`` ordered by ``strategy`` (unknown strategies behave as ``priority``); never drops an item."""
    items = list(items)
    if len(items) <= 1:
        return items
    cands = [candidate(i) for i in items]
    idx = list(range(len(items)))
    if strategy == "weighted":
        # Efraimidis-Spirakis: sorting by u^(1/w) draws a permutation with probabilities proportional to weight
        keys = [rng.random() ** (1.0 / c.weight) if c.weight > 0 else -1.0 for c in cands]
        idx.sort(key=lambda i: -keys[i])
    elif strategy == "round-robin":
        shift = (stats.next_turn(group) // max(1, sticky)) % len(idx)
        idx = idx[shift:] + idx[:shift]
    elif strategy == "random":
        rng.shuffle(idx)
    elif strategy == "least-used":
        idx.sort(key=lambda i: stats.started.get(cands[i].key, 0))
    elif strategy == "cost-optimized":
        idx.sort(key=lambda i: (cands[i].cost is None, cands[i].cost or 0.0))
    elif strategy == "latency-optimized":
        idx.sort(key=lambda i: stats.latency_ms.get(cands[i].key, -1.0))
    elif strategy == "p2c":
        idx = _p2c(idx, cands, stats, rng)
    return [items[i] for i in idx]


def _p2c(idx: list[int], cands: list[Candidate], stats: RoutingStats, rng: random.Random) -> list[int]:
    def load(i: int) -> tuple[int, float]:
        key = cands[i].key
        return stats.in_flight.get(key, 0), stats.latency_ms.get(key, 0.0)

    a, b = rng.sample(idx, 2)
    first = a if load(a) <= load(b) else b
    rest = sorted((i for i in idx if i != first), key=load)
    return [first, *rest]
