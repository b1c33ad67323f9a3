"""The background writer shared by session tracking and the cache's hit-rate counts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from omniroute_edge.flusher import Flusher


class Writes:
    """A flush that records when it ran and fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    async def __call__(self) -> None:
        self.calls += 1
        if self.failing:
            raise ConnectionError("redis is down")


async def until(predicate: object, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_it_writes_on_the_interval_and_once_more_when_stopped() -> None:
    writes = Writes()
    flusher = Flusher(writes, interval_s=0.02, name="t")
    await flusher.start()
    await until(lambda: writes.calls >= 3)
    await flusher.stop()
    stopped_at = writes.calls
    await asyncio.sleep(0.06)
    assert writes.calls == stopped_at  # the loop is gone; stop's own write was the last


async def test_a_wake_writes_without_waiting_for_the_interval() -> None:
    writes = Writes()
    flusher = Flusher(writes, interval_s=3600, name="t")
    await flusher.start()
    await asyncio.sleep(0.02)
    assert writes.calls == 0
    flusher.wake()
    await until(lambda: writes.calls == 1)
    await asyncio.sleep(0.02)
    assert writes.calls == 1  # one wake, one write: the request to write early is consumed
    await flusher.stop()
    assert writes.calls == 2


async def test_a_failed_write_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    writes = Writes()
    writes.failing = True
    flusher = Flusher(writes, interval_s=0.01, name="t-fails")
    with caplog.at_level(logging.WARNING, logger="omniroute_edge.flusher"):
        await flusher.start()
        await until(lambda: writes.calls >= 2)
    assert "t-fails: a batch could not be written to Redis" in caplog.text
    writes.failing = False
    calls = writes.calls
    await until(lambda: writes.calls > calls + 1)
    await flusher.stop()


async def test_stop_never_raises_and_works_without_start() -> None:
    writes = Writes()
    writes.failing = True
    flusher = Flusher(writes, interval_s=3600, name="t")
    await flusher.stop()  # a final write that fails is swallowed: shutting down must go on
    assert writes.calls == 1
