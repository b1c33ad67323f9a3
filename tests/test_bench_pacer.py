"""The benchmark mock's pacer (bench/pacer.py): deadlines run in order and never early, on the timerfd or not.

Only the lower bound is asserted (a timer may be late on a busy machine, never early); how precise it is on an
idle one is bench/PROFILE.md's business, not a timed unit test's.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _pacer_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pacer", REPO / "bench" / "pacer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("precise", [True, False])
async def test_deadlines_run_in_order_and_never_early(precise: bool) -> None:
    pacer = _pacer_module().Pacer(asyncio.get_running_loop())
    if not precise:
        pacer.close()  # the fallback: the loop's own timers
    assert pacer.precise is precise
    start = time.monotonic_ns()
    ran: list[tuple[str, int]] = []
    done = asyncio.Event()
    # asked out of order, with a tie: they run by deadline, the tie in the order asked
    plan = [("c", 6_000_000), ("a", 2_000_000), ("b", 4_000_000), ("b2", 4_000_000), ("now", 0)]
    for name, offset in plan:
        pacer.call_at(start + offset, lambda name=name: ran.append((name, time.monotonic_ns())))
    pacer.call_at(start + 6_000_001, done.set)
    await asyncio.wait_for(done.wait(), 5)
    assert [name for name, _ in ran] == ["now", "a", "b", "b2", "c"]
    deadlines = dict(plan)
    for name, at in ran:
        assert at >= start + deadlines[name]
    pacer.close()


async def test_sleep_until_returns_at_or_after_the_deadline() -> None:
    pacer = _pacer_module().Pacer(asyncio.get_running_loop())
    deadline = time.monotonic_ns() + 3_000_000
    await asyncio.wait_for(pacer.sleep_until(deadline), 5)
    assert time.monotonic_ns() >= deadline
    await asyncio.wait_for(pacer.sleep_until(deadline - 10**9), 5)  # a deadline already past: at once
    pacer.close()
