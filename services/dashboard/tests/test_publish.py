"""Config propagation: every mutation reaches the NATS KV key (as a snapshot the data plane parses) within a
second, survives a NATS outage, and the published version never goes backwards."""

from __future__ import annotations

import asyncio
import functools
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from omniroute_core import jsonx
from omniroute_core.crypto import hash_api_key
from omniroute_core.events import CONFIG_KEY, config_bucket
from omniroute_core.snapshot import ConfigSnapshot, parse_snapshot
from omniroute_core.snapshot_watcher import SnapshotWatcher
from omniroute_devservers.servers import command, free_port, url_for, wait_ready

from .conftest import Dashboard, make_settings, start


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def kv(nc: NATS) -> KeyValue:
    return await config_bucket(nc.jetstream())


async def read_kv(kv: KeyValue) -> ConfigSnapshot | None:
    try:
        entry = await kv.get(CONFIG_KEY)
    except KeyNotFoundError:
        return None
    return parse_snapshot(entry.value) if entry.value else None


async def eventually(probe: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_startup_publishes_the_current_state(dash: Dashboard, kv: KeyValue) -> None:
    snapshot = await read_kv(kv)
    assert snapshot is not None
    version = await dash.ctx.pool.fetchval("SELECT version FROM config_version")
    assert snapshot.version == version == dash.ctx.publisher.published_version
    assert snapshot.connections == ()


async def test_a_mutation_reaches_a_watcher_within_a_second(dash: Dashboard, nc: NATS) -> None:
    watcher = SnapshotWatcher(nc.jetstream())
    await watcher.start()
    try:
        started = time.monotonic()
        created = await dash.admin.post(
            "/api/providers", json={"provider": "openai", "name": "main", "apiKey": "sk-test-123456789012"}
        )
        key = (await dash.admin.post("/api/keys", json={"name": "app", "scopes": ["chat"]})).json()
        connection_id = created.json()["id"]
        await eventually(
            lambda: (
                any(c.id == connection_id for c in watcher.current.connections)
                and hash_api_key(key["key"]) in watcher.current.keys_by_hash
            ),
            timeout=1.0,
        )
        assert time.monotonic() - started < 1.0
    finally:
        await watcher.stop()

    snap = watcher.current
    (conn,) = snap.connections
    assert (conn.provider, conn.name, conn.is_active) == ("openai", "main", True)
    assert "sk-test" not in snap.to_json().decode()
    assert dash.ctx.cipher.decrypt(conn.api_key_enc, aad=conn.id) == "sk-test-123456789012"
    (api_key,) = snap.api_keys
    assert (api_key.id, api_key.scopes, api_key.revoked) == (key["id"], ("chat",), False)
    assert snap.version == await dash.ctx.pool.fetchval("SELECT version FROM config_version")


async def test_key_options_reach_the_snapshot(dash: Dashboard, kv: KeyValue) -> None:
    expires = "2999-01-02T03:04:05+00:00"
    body = {"name": "batch", "scopes": ["embeddings"], "expiresAt": expires, "noLog": True}
    created = (await dash.admin.post("/api/keys", json=body)).json()
    await dash.admin.put(f"/api/keys/{created['id']}", json={"revoked": True})
    snap = await read_kv(kv)
    assert snap is not None
    (key,) = snap.api_keys
    assert key.expires_at_ms == int(datetime.fromisoformat(expires).timestamp() * 1000)
    assert (key.no_log, key.revoked, key.scopes) == (True, True, ("embeddings",))
    assert not key.usable(0)


async def test_stops_cleanly_while_nats_is_unreachable(pg_database: str, nats_port: int) -> None:
    async for running in start(make_settings(pg_database, url_for("nats", nats_port))):
        assert (await running.client.get("/api/monitoring/health")).json()["nats"] == "disconnected"
        assert (await running.admin.post("/api/keys", json={"name": "x"})).status_code == 201


async def test_update_and_delete_are_published(dash: Dashboard, kv: KeyValue) -> None:
    connection_id = (await dash.admin.post("/api/providers", json={"provider": "openai", "name": "a"})).json()["id"]
    await dash.admin.put(f"/api/providers/{connection_id}", json={"isActive": False})
    snap = await read_kv(kv)
    assert snap is not None
    assert [c.is_active for c in snap.connections] == [False]
    await dash.admin.delete(f"/api/providers/{connection_id}")
    snap = await read_kv(kv)
    assert snap is not None
    assert snap.connections == ()


async def test_a_newer_foreign_version_in_the_bucket_is_overtaken(dash: Dashboard, kv: KeyValue) -> None:
    # e.g. the database was restored from a backup while the bucket kept a newer version
    current = await read_kv(kv)
    assert current is not None
    ahead = current.version + 1000
    await kv.put(CONFIG_KEY, ConfigSnapshot.build(ahead, (), (), {"stale": True}).to_json())
    await dash.admin.post("/api/keys", json={"name": "after-restore"})
    snap = await read_kv(kv)
    assert snap is not None
    assert snap.version > ahead
    assert [k.name for k in snap.api_keys] == ["after-restore"]
    assert await dash.ctx.pool.fetchval("SELECT version FROM config_version") == snap.version


def reached(seen: list[int], version: int) -> bool:
    return bool(seen) and seen[-1] >= version


async def test_versions_never_go_backwards_with_two_replicas(
    pg_database: str, nats_url: str, kv: KeyValue, dash: Dashboard
) -> None:
    seen: list[int] = []
    watch = await kv.watch(CONFIG_KEY)

    async def collect() -> None:
        async for entry in watch:
            if entry is not None and entry.value:
                seen.append(int(jsonx.loads(entry.value)["version"]))

    collector = asyncio.create_task(collect())
    try:
        replica_settings = dash.ctx.settings.model_copy()
        async for replica in start(replica_settings):
            await asyncio.gather(
                *(
                    client.post("/api/providers", json={"provider": "p", "name": f"{label}{i}"})
                    for i in range(10)
                    for label, client in (("a", dash.admin), ("b", replica.admin))
                )
            )
            final = await dash.ctx.pool.fetchval("SELECT version FROM config_version")
            await eventually(functools.partial(reached, seen, final), timeout=2.0)
    finally:
        collector.cancel()
        await watch.stop()  # type: ignore[no-untyped-call]
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    snap = await read_kv(kv)
    assert snap is not None
    assert len(snap.connections) == 20


@pytest.fixture
def nats_port() -> int:
    return free_port()


async def test_nats_outage_delays_but_does_not_fail(pg_database: str, tmp_path: Path, nats_port: int) -> None:
    """NATS down at startup: the API still answers at once, and the newest version appears once NATS is up."""
    settings = make_settings(pg_database, url_for("nats", nats_port))
    async for running in start(settings):
        began = time.monotonic()
        response = await running.admin.post("/api/providers", json={"provider": "openai", "name": "offline"})
        assert response.status_code == 201
        assert time.monotonic() - began < 1.0
        health = (await running.client.get("/api/monitoring/health")).json()
        assert health["nats"] == "disconnected"
        assert health["status"] == "ok"

        server = subprocess.Popen(command("nats", tmp_path / "nats", nats_port), stdout=subprocess.DEVNULL)
        try:
            await asyncio.to_thread(wait_ready, "nats", nats_port, 30.0, server)
            client = await nats.connect(url_for("nats", nats_port))
            try:
                bucket = await config_bucket(client.jetstream())
                version = await running.ctx.pool.fetchval("SELECT version FROM config_version")
                deadline = time.monotonic() + 10
                snap = await read_kv(bucket)
                while snap is None or snap.version < version:
                    assert time.monotonic() < deadline, "snapshot not republished after NATS came back"
                    await asyncio.sleep(0.05)
                    snap = await read_kv(bucket)
                assert [c.name for c in snap.connections] == ["offline"]
            finally:
                await client.close()
        finally:
            server.send_signal(signal.SIGINT)
            await asyncio.to_thread(server.wait, 10)
