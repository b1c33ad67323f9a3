"""``/api/pricing``, ``/api/usage/*`` and ``/api/telemetry/summary`` through the dashboard, against a real usage
service process (the dashboard may not import it) fed through real NATS JetStream into the same PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from omniroute.v1 import common_pb2, usage_pb2
from omniroute_core import events, grpcx, jsonx
from omniroute_devservers.servers import free_port

from .conftest import Dashboard, make_settings, start
from .test_auth import assert_error

USAGE_SERVICE = "omniroute.v1.UsageService"


async def _start_usage(database_url: str, nats_url: str, log_path: Path) -> AsyncIterator[str]:
    port, consumer = free_port(), f"dash-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "USAGE_PORT": str(port),
        "METRICS_PORT": "0",
        "CONSUMER_NAME": consumer,
        "BIND_HOST": "127.0.0.1",
        "BATCH_WAIT_MS": "50",
    }
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "omniroute_usage.main", env=env, stdout=log, stderr=log
        )
    try:
        assert await grpcx.wait_healthy(f"127.0.0.1:{port}", timeout=30, service=USAGE_SERVICE), log_path.read_text()
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)
        nc = await events.connect(nats_url, "dash-test-cleanup")
        try:
            await nc.jetstream().delete_consumer(events.USAGE_STREAM, consumer)
        finally:
            await nc.close()


@pytest.fixture
async def usage_addr(pg_database: str, nats_url: str, tmp_path: Path) -> AsyncIterator[str]:
    async for addr in _start_usage(pg_database, nats_url, tmp_path / "usage.log"):
        yield addr


@pytest.fixture
async def udash(pg_database: str, nats_url: str, usage_addr: str) -> AsyncIterator[Dashboard]:
    async for running in start(make_settings(pg_database, nats_url, usage_addr=usage_addr)):
        yield running


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await events.connect(nats_url, "dash-usage-tests")
    try:
        yield client
    finally:
        await client.close()


def _event(provider: str, n: int, **fields: object) -> usage_pb2.UsageEvent:
    values: dict[str, object] = {
        "event_id": f"ev-{provider}-{n}",
        "request_id": f"req-{provider}-{n}",
        "ts_unix_ms": int(time.time() * 1000),
        "key_id": f"key-{provider}",
        "provider": provider,
        "model": "gpt-4o",
        "connection_id": f"conn-{provider}",
        "status": 200,
        "latency_ms": 100 * (n + 1),
        "ttft_ms": 50,
        "attempt": 1,
        "endpoint": "/v1/chat/completions",
    }
    values.update(fields)
    event = usage_pb2.UsageEvent(**values)  # type: ignore[arg-type]
    event.usage.CopyFrom(common_pb2.Usage(input_tokens=1000, output_tokens=100, total_tokens=1100))
    return event


async def _ingest(nc: NATS, db: str, batch: list[usage_pb2.UsageEvent]) -> None:
    js = nc.jetstream()
    await events.ensure_usage_stream(js)
    for event in batch:
        await js.publish(
            f"{events.USAGE_SUBJECT_PREFIX}.{event.provider}",
            event.SerializeToString(),
            headers={"Nats-Msg-Id": event.event_id},
        )
    ids = [e.event_id for e in batch]
    conn = await asyncpg.connect(db)
    try:
        deadline = time.monotonic() + 20
        while await conn.fetchval("SELECT count(*) FROM usage_events WHERE event_id = ANY($1)", ids) < len(ids):
            assert time.monotonic() < deadline, "events not stored in time"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


PATHS = [
    ("GET", "/api/pricing"),
    ("PUT", "/api/pricing"),
    ("GET", "/api/usage/budget"),
    ("POST", "/api/usage/budget"),
    ("GET", "/api/usage/history"),
    ("GET", "/api/usage/logs"),
    ("GET", "/api/usage/request-logs"),
    ("GET", "/api/usage/conn-x"),
    ("GET", "/api/telemetry/summary"),
]


async def test_every_route_needs_an_admin(dash: Dashboard) -> None:
    for method, path in PATHS:
        assert_error(await dash.client.request(method, path), 401, "authentication_error")


async def test_usage_down_is_503(pg_database: str, nats_url: str) -> None:
    settings = make_settings(pg_database, nats_url, usage_addr=f"127.0.0.1:{free_port()}")
    async for running in start(settings):
        response = await running.admin.get("/api/pricing")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "usage_unavailable"


async def test_pricing_get_and_override(udash: Dashboard) -> None:
    table = (await udash.admin.get("/api/pricing")).json()
    assert table["unit"] == "USD per 1M tokens"
    assert table["pricing"]["anthropic"]["claude-sonnet-4-5"]["cachedInput"] == 0.3
    put = await udash.admin.put("/api/pricing", json={"model": "gpt-4o", "provider": "openai", "input": 1, "output": 3})
    assert put.status_code == 200, put.text
    assert put.json()["price"]["input"] == 1.0
    after = (await udash.admin.get("/api/pricing")).json()
    assert after["pricing"]["openai"]["gpt-4o"]["source"] == "override"

    bad = await udash.admin.put("/api/pricing", json={"model": "gpt-4o", "input": -1, "output": 3})
    assert_error(bad, 400, "invalid_request_error")
    assert bad.json()["error"]["param"] == "input"
    assert_error(await udash.admin.put("/api/pricing", content=b"{oops"), 400, "invalid_request_error")


async def test_budget_set_list_and_validation(udash: Dashboard, nc: NATS, pg_database: str) -> None:
    provider = f"p{uuid.uuid4().hex[:8]}"
    created = await udash.admin.post(
        "/api/usage/budget", json={"keyId": f"key-{provider}", "limit": 1, "period": "daily"}
    )
    assert created.status_code == 200, created.text
    assert created.json()["budget"]["limit"] == 1.0
    # gpt-4o: 1000 input * 2.5 + 100 output * 10 per million = 0.0035 USD per event
    await _ingest(nc, pg_database, [_event(provider, n) for n in range(4)])
    listed = (await udash.admin.get("/api/usage/budget")).json()
    assert listed["total"] == 1
    (budget,) = listed["budgets"]
    assert set(budget) >= {"keyId", "limit", "period", "spent", "remaining", "resetAt"}
    assert budget["spent"] == pytest.approx(0.014)
    assert budget["remaining"] == pytest.approx(0.986)

    for body, param in [
        ({"limit": 1, "period": "daily"}, "keyId"),
        ({"keyId": "k", "limit": "lots", "period": "daily"}, "limit"),
        ({"keyId": "k", "limit": 5, "period": "hourly"}, "period"),
    ]:
        response = await udash.admin.post("/api/usage/budget", json=body)
        assert_error(response, 400, "invalid_request_error")
        assert response.json()["error"]["param"] == param


async def test_history_logs_request_logs_connection_and_telemetry(udash: Dashboard, nc: NATS, pg_database: str) -> None:
    provider = f"p{uuid.uuid4().hex[:8]}"
    batch = [_event(provider, n) for n in range(5)]
    # a fallback chain: attempt 1 fails on another provider, attempt 2 succeeds under the same request id
    batch.append(_event(provider, 5, request_id="chain", status=502, error_type="upstream_error", attempt=1))
    batch.append(_event(provider, 6, request_id="chain", attempt=2))
    await _ingest(nc, pg_database, batch)
    key = f"key-{provider}"

    history = (await udash.admin.get("/api/usage/history", params={"keyId": key, "granularity": "minute"})).json()
    assert history["totals"]["requests"] == 7
    assert history["totals"]["errors"] == 1
    assert history["totals"]["inputTokens"] == 7000
    assert history["totals"]["cost"] == pytest.approx(7 * 0.0035)
    assert sum(b["requests"] for b in history["history"]) == 7

    logs = (await udash.admin.get("/api/usage/logs", params={"provider": provider, "limit": 3})).json()
    assert (logs["total"], logs["limit"], logs["offset"], len(logs["logs"])) == (7, 3, 0, 3)
    page3 = (await udash.admin.get("/api/usage/logs", params={"provider": provider, "limit": 3, "offset": 6})).json()
    assert len(page3["logs"]) == 1
    errors = (await udash.admin.get("/api/usage/logs", params={"keyId": key, "status": "error"})).json()
    assert [e["status"] for e in errors["logs"]] == [502]
    by_status = (await udash.admin.get("/api/usage/logs", params={"keyId": key, "status": "200"})).json()
    assert by_status["total"] == 6
    none = (await udash.admin.get("/api/usage/logs", params={"keyId": key, "model": "other-model"})).json()
    assert none["total"] == 0

    requests = (await udash.admin.get("/api/usage/request-logs", params={"keyId": key})).json()
    assert requests["total"] == 6
    (chain,) = [r for r in requests["requests"] if r["requestId"] == "chain"]
    assert (chain["attempts"], chain["status"], chain["inputTokens"]) == (2, 200, 2000)

    conn = (await udash.admin.get(f"/api/usage/conn-{provider}")).json()
    assert conn["connectionId"] == f"conn-{provider}"
    assert conn["totals"]["requests"] == 7
    assert conn["byModel"][0]["model"] == "gpt-4o"
    assert len(conn["daily"]) == 1

    telemetry = (await udash.admin.get("/api/telemetry/summary")).json()
    mine = telemetry["providers"][provider]
    assert mine["count"] == 7
    assert mine["p50"] <= mine["p95"] <= mine["p99"]
    assert {"p50", "p95", "p99", "count"} == set(mine)


async def test_query_failures(udash: Dashboard) -> None:
    assert_error(await udash.admin.get("/api/usage/unknown-connection"), 404, "not_found_error")
    for path, params, param in [
        ("/api/usage/logs", {"limit": "0"}, "limit"),
        ("/api/usage/logs", {"limit": "many"}, "limit"),
        ("/api/usage/logs", {"status": "teapot"}, "status"),
        ("/api/usage/request-logs", {"from": "yesterday"}, "from"),
        ("/api/usage/history", {"granularity": "week"}, "granularity"),
        ("/api/usage/history", {"from": "2025-01-02", "to": "2025-01-01"}, "from"),
        ("/api/telemetry/summary", {"window": "100000"}, "window"),
    ]:
        response = await udash.admin.get(path, params=params)
        assert_error(response, 400, "invalid_request_error")
        assert response.json()["error"]["param"] == param, (path, params)


async def test_budget_warning_reaches_nats(udash: Dashboard, nc: NATS, pg_database: str) -> None:
    provider = f"p{uuid.uuid4().hex[:8]}"
    received: list[Msg] = []

    async def collect(msg: Msg) -> None:
        received.append(msg)

    sub = await nc.subscribe("omniroute.budget.warning", cb=collect)
    try:
        await udash.admin.post(
            "/api/usage/budget", json={"keyId": f"key-{provider}", "limit": 0.01, "period": "weekly"}
        )
        await _ingest(nc, pg_database, [_event(provider, n) for n in range(3)])  # 0.0105 USD: past 80%
        deadline = time.monotonic() + 10
        while not received:
            assert time.monotonic() < deadline, "no budget warning"
            await asyncio.sleep(0.05)
    finally:
        await sub.unsubscribe()
    warning = jsonx.loads(received[0].data)
    assert warning["keyId"] == f"key-{provider}"
    assert warning["period"] == "weekly"
