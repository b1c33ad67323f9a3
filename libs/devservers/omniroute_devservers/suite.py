"""The five OmniRoute services as real processes, for cross-service tests.

Each service runs as ``python -m omniroute_<name>.main`` on free ports against the given backing servers, logs
to a file under ``root`` and is health-checked before :meth:`Suite.start` returns. Services can be stopped and
started again individually (fault tests), and extra edges with other settings can join the same backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omniroute_core.crypto import generate_encryption_key
from omniroute_devservers.servers import free_port

__all__ = ["SERVICES", "Suite"]

SERVICES = ("translator", "usage", "executor", "dashboard", "edge")
TEST_PASSWORD = "test-dashboard-password"


@dataclass
class _Proc:
    name: str
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None


@dataclass
class Suite:
    root: Path
    database_url: str
    redis_url: str
    nats_url: str
    extra_env: Mapping[str, str] = field(default_factory=dict)
    procs: dict[str, _Proc] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in SERVICES:
            self.ports[name] = free_port()
        self.base_env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "NATS_URL": self.nats_url,
            "TRANSLATOR_ADDR": f"127.0.0.1:{self.ports['translator']}",
            "EXECUTOR_ADDR": f"127.0.0.1:{self.ports['executor']}",
            "USAGE_ADDR": f"127.0.0.1:{self.ports['usage']}",
            "DASHBOARD_URL": f"http://127.0.0.1:{self.ports['dashboard']}",
            "OMNIROUTE_ENCRYPTION_KEY": generate_encryption_key(),
            "INITIAL_PASSWORD": TEST_PASSWORD,
            "OMNIROUTE_DATA_DIR": str(self.root),
            "QDRANT_PATH": str(self.root / "qdrant"),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "UPSTREAM_READ_TIMEOUT_S": "2",
            **self.extra_env,
        }

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['edge']}"

    def _env_for(self, name: str, key: str, port: int, overrides: Mapping[str, str]) -> dict[str, str]:
        env = {**self.base_env, f"{name.upper()}_PORT": str(port), "METRICS_PORT": str(free_port())}
        if name == "edge":
            # the in-process vector engine locks its folder: every edge process gets its own
            env["QDRANT_PATH"] = str(self.root / f"qdrant-{key}")
        return {**env, **overrides}

    def start(self) -> None:
        for name in SERVICES:
            self.start_service(name)

    def start_service(self, name: str, *, key: str | None = None, overrides: Mapping[str, str] | None = None) -> int:
        """Start (or restart) service ``name``; ``key`` names an extra instance. Returns its port."""
        key = key or name
        proc = self.procs.get(key)
        if proc is None:
            port = self.ports.get(key) or free_port()
            self.ports[key] = port
            proc = _Proc(name, self._env_for(name, key, port, overrides or {}), self.root / f"{key}.log")
            self.procs[key] = proc
        with proc.log.open("ab") as log:
            proc.popen = subprocess.Popen(
                [sys.executable, "-m", f"omniroute_{name}.main"], env=proc.env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy(key)
        return self.ports[key]

    def stop_service(self, key: str) -> None:
        proc = self.procs[key]
        if proc.popen is not None and proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(15)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()

    def stop(self) -> None:
        for key in reversed(list(self.procs)):
            self.stop_service(key)

    def log_tail(self, key: str, lines: int = 40) -> str:
        path = self.procs[key].log
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _wait_healthy(self, key: str, timeout: float = 30.0) -> None:
        proc = self.procs[key]
        port = self.ports[key]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.popen is not None
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{key} exited with {proc.popen.returncode}:\n{self.log_tail(key)}")
            if self._healthy(proc.name, port):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{key} not healthy after {timeout}s:\n{self.log_tail(key)}")

    @staticmethod
    def _healthy(name: str, port: int) -> bool:
        if name in ("edge", "dashboard"):
            path = "/health" if name == "edge" else "/api/monitoring/health"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False
        # synchronous on purpose: tests call this from inside a running event loop
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
