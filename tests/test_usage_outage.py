"""Lossless metering: NATS stops while requests keep coming and starts again; PostgreSQL ends up with exactly
one usage row per request (the executor spools to disk, replays, and the usage writer deduplicates)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from omniroute_devservers.control import config_synced, make_key, make_provider, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.pytest_plugin import _Server
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

BEFORE, DURING, AFTER = 20, 30, 10


async def stored(suite: Suite, key_id: str) -> int:
    conn = await asyncpg.connect(suite.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM usage_events WHERE key_id = $1", key_id))
    finally:
        await conn.close()


async def test_counts_are_exact_across_a_nats_outage(
    suite: Suite, admin: httpx.AsyncClient, nats_server: _Server | str
) -> None:
    if isinstance(nats_server, str):
        pytest.skip("NATS_URL points at an external server this test cannot stop")
    fake = FakeOpenAI()
    await fake.start()
    try:
        await make_provider(admin, "together", fake.base_url)
        key_id, key = await make_key(admin)
        await config_synced(admin, [suite.edge_url])
        body = {"model": "together/meta-llama/Llama-3-8b", "messages": [{"role": "user", "content": "x"}]}
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=suite.edge_url, timeout=15, headers=headers) as http:

            async def one() -> None:
                resp = await http.post("/v1/chat/completions", json=body)
                assert resp.status_code == 200, resp.text

            await until_ok(one, timeout=5)  # the new provider and key are live
            sent = 1
            for _ in range(BEFORE):
                await one()
                sent += 1
            nats_server.stop()
            # the data plane keeps serving from its in-memory snapshot; metering goes to the spool
            for _ in range(DURING):
                await one()
                sent += 1
            nats_server.restart()
            for _ in range(AFTER):
                await until_ok(one, timeout=10)
                sent += 1
        deadline = time.monotonic() + 40
        count = await stored(suite, key_id)
        while count < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            count = await stored(suite, key_id)
        assert count == sent
        await asyncio.sleep(2)  # late duplicates would show up here
        assert await stored(suite, key_id) == sent
    finally:
        await fake.stop()
