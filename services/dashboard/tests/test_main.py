"""The real entry point: refuses a missing or bad encryption key, serves over uvicorn otherwise."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from omniroute_core.crypto import generate_encryption_key
from omniroute_dashboard.context import StartupError, build_cipher
from omniroute_dashboard.settings import DashboardSettings
from omniroute_devservers.servers import free_port

from .conftest import PASSWORD


def run_main(env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OMNIROUTE_", "INITIAL_PASSWORD"))}
    full.update(env)
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "omniroute_dashboard.main"], env=full, text=True, **kwargs
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "is not set"), ("not base64!", "invalid"), ("YWJj", "32 bytes")],
    ids=["missing", "garbage", "short"],
)
def test_bad_encryption_key_is_refused(key: str, message: str) -> None:
    with pytest.raises(StartupError, match=message):
        build_cipher(DashboardSettings(omniroute_encryption_key=key))
    proc = run_main({"OMNIROUTE_ENCRYPTION_KEY": key}, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "OMNIROUTE_ENCRYPTION_KEY" in stderr
    assert message in stderr


async def test_serves_over_uvicorn(pg_database: str, nats_url: str, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    log = (tmp_path / "dashboard.log").open("w")
    proc = run_main(
        {
            "DATABASE_URL": pg_database,
            "NATS_URL": nats_url,
            "OMNIROUTE_ENCRYPTION_KEY": generate_encryption_key(),
            "INITIAL_PASSWORD": PASSWORD,
            "DASHBOARD_PORT": str(port),
            "METRICS_PORT": str(metrics_port),
            "BIND_HOST": "127.0.0.1",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (tmp_path / "dashboard.log").read_text()
                try:
                    health = await client.get("/api/monitoring/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "dashboard did not start"
                    await asyncio.sleep(0.1)
            assert health.json()["status"] == "ok"
            assert (await client.post("/api/auth/login", json={"password": PASSWORD})).status_code == 200
            assert (await client.get("/api/providers")).status_code == 200
            metrics = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert "omniroute_dashboard_logins_total" in metrics.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()
    # uvicorn re-raises the signal it handled after a graceful shutdown
    assert proc.returncode in (0, -signal.SIGTERM)
    lines = (tmp_path / "dashboard.log").read_text().splitlines()
    assert any('"service":"dashboard"' in line and "shutdown complete" in line for line in lines), lines
