"""The snapshot watcher follows every published version, also across a NATS restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from omniroute_core import events
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_core.snapshot_watcher import SnapshotWatcher
from omniroute_devservers.pytest_plugin import _Server


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[_Server]:
    server = _Server("nats", tmp_path)
    try:
        yield server
    finally:
        server.stop()


async def publish(server: _Server, version: int) -> None:
    nc = await events.connect(server.url, "test-dashboard")
    try:
        kv = await events.config_bucket(nc.jetstream())
        await kv.put(events.CONFIG_KEY, ConfigSnapshot.build(version, (), (), {}).to_json())
    finally:
        await nc.close()


async def seen(watcher: SnapshotWatcher, version: int, timeout: float) -> float:
    start = time.monotonic()
    while watcher.current.version != version:
        assert time.monotonic() - start < timeout, f"version {version} not seen (at {watcher.current.version})"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_updates_arrive_quickly_and_survive_a_nats_restart(private_nats: _Server) -> None:
    await publish(private_nats, 1)
    nc = await events.connect(private_nats.url, "test-edge")
    watcher = SnapshotWatcher(nc.jetstream(), poll_s=0.5)
    await watcher.start()
    try:
        assert watcher.current.version == 1
        await publish(private_nats, 2)
        assert await seen(watcher, 2, timeout=1.0) < 1.0
        private_nats.restart()  # the watch's ephemeral consumer dies with the server
        await publish(private_nats, 3)
        await seen(watcher, 3, timeout=5.0)
        await publish(private_nats, 4)
        await seen(watcher, 4, timeout=2.0)
    finally:
        await watcher.stop()
        await nc.close()
