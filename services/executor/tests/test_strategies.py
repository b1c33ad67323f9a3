"""The ordering strategies, table-driven with a seeded random source and hand-set statistics."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from omniroute_executor.routing import Candidate, RoutingStats, order

ITEMS = ["a", "b", "c"]


def cand(weights: dict[str, int] | None = None, costs: dict[str, float | None] | None = None):  # type: ignore[no-untyped-def]
    return lambda k: Candidate(k, (weights or {}).get(k, 1), (costs or {}).get(k))


def stats(**fields: dict[str, float]) -> RoutingStats:
    s = RoutingStats()
    for name, values in fields.items():
        getattr(s, name).update(values)
    return s


@pytest.mark.parametrize(
    ("strategy", "st", "candidate", "expected"),
    [
        ("priority", RoutingStats(), cand(), ["a", "b", "c"]),
        ("fill-first", RoutingStats(), cand(), ["a", "b", "c"]),
        ("unknown-strategy", RoutingStats(), cand(), ["a", "b", "c"]),
        ("least-used", stats(started={"a": 5, "b": 1, "c": 3}), cand(), ["b", "c", "a"]),
        ("least-used", stats(started={"a": 1, "b": 1}), cand(), ["c", "a", "b"]),
        ("cost-optimized", RoutingStats(), cand(costs={"a": 3.0, "b": None, "c": 1.0}), ["c", "a", "b"]),
        ("cost-optimized", RoutingStats(), cand(), ["a", "b", "c"]),  # no prices: order kept
        ("latency-optimized", stats(latency_ms={"a": 300, "b": 100, "c": 200}), cand(), ["b", "c", "a"]),
        ("latency-optimized", stats(latency_ms={"a": 300, "b": 100}), cand(), ["c", "b", "a"]),  # c unmeasured
        ("weighted", RoutingStats(), cand(weights={"a": 0, "b": 0, "c": 5}), ["c", "a", "b"]),
    ],
)
def test_deterministic_orders(strategy: str, st: RoutingStats, candidate, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert order(strategy, ITEMS, candidate, stats=st, rng=random.Random(1), group="g") == expected


def test_round_robin_rotates_per_group_with_a_sticky_limit() -> None:
    st = RoutingStats()
    firsts = [order("round-robin", ITEMS, cand(), stats=st, rng=random.Random(), group="g")[0] for _ in range(4)]
    assert firsts == ["a", "b", "c", "a"]
    sticky = [
        order("round-robin", ITEMS, cand(), stats=st, rng=random.Random(), group="h", sticky=2)[0] for _ in range(6)
    ]
    assert sticky == ["a", "a", "b", "b", "c", "c"]
    assert order("round-robin", ITEMS, cand(), stats=st, rng=random.Random(), group="g") == ["b", "c", "a"]


def test_weighted_draws_in_proportion_and_keeps_everything() -> None:
    rng = random.Random(7)
    firsts = Counter(
        order("weighted", ITEMS, cand(weights={"a": 1, "b": 3, "c": 6}), stats=RoutingStats(), rng=rng, group="g")[0]
        for _ in range(5000)
    )
    assert 0.07 < firsts["a"] / 5000 < 0.13
    assert 0.25 < firsts["b"] / 5000 < 0.35
    assert 0.55 < firsts["c"] / 5000 < 0.65


def test_random_is_uniform_and_seeded() -> None:
    runs = [order("random", ITEMS, cand(), stats=RoutingStats(), rng=random.Random(3), group="g") for _ in range(2)]
    assert runs[0] == runs[1] and sorted(runs[0]) == ITEMS
    rng = random.Random(11)
    firsts = Counter(order("random", ITEMS, cand(), stats=RoutingStats(), rng=rng, group="g")[0] for _ in range(3000))
    assert all(800 < n < 1200 for n in firsts.values())


def test_p2c_prefers_the_less_loaded_of_two_random_picks() -> None:
    st = stats(in_flight={"a": 9, "b": 0, "c": 4})
    rng = random.Random(5)
    firsts = Counter(order("p2c", ITEMS, cand(), stats=st, rng=rng, group="g")[0] for _ in range(3000))
    assert firsts["a"] == 0  # the most loaded never wins a pair
    assert firsts["b"] > firsts["c"]
    assert order("p2c", ITEMS, cand(), stats=st, rng=random.Random(1), group="g")[1:] in (
        ["c", "a"],
        ["b", "a"],
    )  # the rest by load


def test_stats_track_in_flight_and_latency_ewma() -> None:
    st = RoutingStats(alpha=0.5)
    st.begin("a")
    st.begin("a")
    st.end("a", 100.0)
    st.end("a", None)  # a failure does not count as a latency sample
    assert st.in_flight["a"] == 0 and st.started["a"] == 2 and st.latency_ms["a"] == 100.0
    st.begin("a")
    st.end("a", 200.0)
    assert st.latency_ms["a"] == 150.0


def test_single_and_empty_lists() -> None:
    assert order("p2c", [], cand(), stats=RoutingStats(), rng=random.Random(), group="g") == []
    assert order("weighted", ["x"], cand(), stats=RoutingStats(), rng=random.Random(), group="g") == ["x"]
