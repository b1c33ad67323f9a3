"""The whole service: wiring in-process, and the real entry point as a process stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js import JetStreamContext

from omniroute.v1 import usage_pb2, usage_pb2_grpc
from omniroute_core import grpcx, jsonx
from omniroute_devservers.servers import free_port
from omniroute_usage.main import UsageService
from omniroute_usage.server import SERVICE_NAME
from omniroute_usage.settings import UsageSettings
from omniroute_usage.testing import eventually, make_event, new_lane, publish

if TYPE_CHECKING:
    from omniroute.v1.usage_pb2_grpc import UsageServiceAsyncStub


async def _requests(stub: UsageServiceAsyncStub, key_id: str) -> int:
    reply = await stub.GetKeyUsage(usage_pb2.KeyUsageRequest(key_id=key_id))
    return reply.requests


async def _publish_for(js: JetStreamContext, key_id: str, count: int) -> None:
    lane = new_lane()
    for n in range(count):
        await publish(js, lane, make_event(lane.provider, n, key_id=key_id))


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USAGE_PORT", "METRICS_PORT", "BATCH_SIZE", "BATCH_WAIT_MS", "BATCH_LINGER_MS", "CONSUMER_NAME"):
        monkeypatch.delenv(name, raising=False)
    defaults = UsageSettings()
    assert (defaults.usage_port, defaults.metrics_port) == (50053, 9103)
    assert (defaults.batch_size, defaults.batch_wait_ms, defaults.consumer_name) == (500, 200, "usage-writer")
    assert defaults.batch_linger_ms == 200
    env = {"USAGE_PORT": "6000", "METRICS_PORT": "0", "BATCH_SIZE": "50", "BATCH_LINGER_MS": "0", "CONSUMER_NAME": "x"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    configured = UsageSettings()
    assert (configured.usage_port, configured.metrics_port, configured.batch_size) == (6000, 0, 50)
    assert (configured.consumer_name, configured.batch_linger_ms) == ("x", 0)


async def test_service_consumes_and_answers_then_stops(db: str, nats_url: str, js: JetStreamContext) -> None:
    settings = UsageSettings(
        database_url=db,
        nats_url=nats_url,
        usage_port=0,
        metrics_port=0,
        consumer_name=f"main-{uuid.uuid4().hex[:8]}",
        batch_wait_ms=50,
    )
    service = await UsageService.start(settings)
    key_id = f"key-{uuid.uuid4().hex[:8]}"
    try:
        await _publish_for(js, key_id, 4)
        async with grpcx.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = usage_pb2_grpc.UsageServiceStub(channel)

            async def all_counted() -> bool:
                return await _requests(stub, key_id) == 4

            await eventually(all_counted)
    finally:
        await service.stop()
        await js.delete_consumer("OMNIROUTE_USAGE", settings.consumer_name)
    assert service.writer_task.done()


async def test_entry_point_serves_and_exits_cleanly_on_sigterm(
    db: str, nats_url: str, js: JetStreamContext, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    consumer = f"proc-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "NATS_URL": nats_url,
        "USAGE_PORT": str(port),
        "METRICS_PORT": str(metrics_port),
        "CONSUMER_NAME": consumer,
        "BIND_HOST": "127.0.0.1",
    }
    log_path = tmp_path / "usage.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "omniroute_usage.main", env=env, stdout=log, stderr=log
        )
    try:
        assert await grpcx.wait_healthy(f"127.0.0.1:{port}", timeout=30, service=SERVICE_NAME)
        key_id = f"key-{uuid.uuid4().hex[:8]}"
        await _publish_for(js, key_id, 3)
        async with grpcx.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = usage_pb2_grpc.UsageServiceStub(channel)

            async def all_counted() -> bool:
                return await _requests(stub, key_id) == 3

            await eventually(all_counted)
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING

        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        )
        assert "omniroute_usage_events_stored_total" in metrics
        assert "omniroute_usage_batch_insert_seconds_bucket" in metrics

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await js.delete_consumer("OMNIROUTE_USAGE", consumer)
    lines = [jsonx.loads(line) for line in log_path.read_bytes().splitlines() if line.strip()]
    assert any(line["msg"] == "usage service stopped" for line in lines)
    assert all(line["service"] == "usage" for line in lines)
