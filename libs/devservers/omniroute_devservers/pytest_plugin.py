"""pytest fixtures: private PostgreSQL, Redis and NATS JetStream servers on free ports, one each per session.

Each server starts on first use (a test needing only NATS never starts PostgreSQL) and stops at session end.
``DATABASE_URL`` / ``REDIS_URL`` / ``NATS_URL`` in the environment point the tests at external servers instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from omniroute_devservers.servers import command, ensure_database, free_port, url_for, wait_ready
from omniroute_devservers.suite import Suite

_ENV = {"postgres": "DATABASE_URL", "redis": "REDIS_URL", "nats": "NATS_URL"}


class _Server:
    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.data = root / kind
        self.log = (root / f"{kind}.log").open("wb")
        self.proc = subprocess.Popen(command(kind, self.data, self.port), stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_ready(kind, self.port, proc=self.proc)
        except Exception:
            self.stop()
            raise
        if kind == "postgres":
            ensure_database(self.port)
        self.url = url_for(kind, self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGINT is PostgreSQL's "fast shutdown"; the others treat it like SIGTERM
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def restart(self) -> None:
        """Stop and start again on the same port and data (for outage tests)."""
        self.stop()
        self.log = (self.data.parent / f"{self.kind}.log").open("ab")
        self.proc = subprocess.Popen(
            command(self.kind, self.data, self.port), stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_ready(self.kind, self.port, proc=self.proc)


def _server(kind: str, factory: pytest.TempPathFactory) -> Iterator[_Server | str]:
    external = os.environ.get(_ENV[kind])
    if external:
        yield external
        return
    # Not under pytest's basetemp: pytest prunes old basetemp folders, and a concurrent session would delete
    # the data folder of a server that is still running.
    root = Path(tempfile.mkdtemp(prefix=f"omniroute-{kind}-"))
    server = _Server(kind, root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server | str]:
    yield from _server("postgres", tmp_path_factory)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server | str]:
    yield from _server("redis", tmp_path_factory)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server | str]:
    yield from _server("nats", tmp_path_factory)


def _url(server: _Server | str) -> str:
    return server if isinstance(server, str) else server.url


@pytest.fixture(scope="session")
def postgres_url(postgres_server: _Server | str) -> str:
    """DSN of the session's PostgreSQL (database ``omniroute``); prefer ``pg_database`` for isolation."""
    return _url(postgres_server)


@pytest.fixture(scope="session")
def redis_url(redis_server: _Server | str) -> str:
    return _url(redis_server)


@pytest.fixture(scope="session")
def nats_url(nats_server: _Server | str) -> str:
    return _url(nats_server)


@pytest.fixture
async def pg_database(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test; dropped afterwards. Yields its DSN."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def suite(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str, nats_url: str
) -> Iterator[Suite]:
    """The five services as processes on free ports, against this session's backing servers."""
    suite = Suite(tmp_path_factory.mktemp("suite"), postgres_url, redis_url, nats_url)
    try:
        suite.start()
        yield suite
    finally:
        suite.stop()
