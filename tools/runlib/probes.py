"""Readiness probes addressed by URL, so a role's command line can say what it waits for.

====================================  ===========================================================
URL                                   ready when
====================================  ===========================================================
``grpc://host:port``                  the standard ``grpc.health.v1`` service answers SERVING
``http://host:port/path``             GET answers 200
``postgresql://user@host:port/db``    the server accepts sessions and database ``db`` exists
``redis://host:port/n``               ``PING`` answers ``+PONG``
``nats://host:port``                  the server greets with ``INFO``
====================================  ===========================================================
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from omniroute_core.grpcx import wait_healthy

__all__ = ["probe", "wait_ready"]

_POLL = 0.2


def _http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


async def _postgres(url: str) -> bool:
    import asyncpg

    # Asked through the maintenance database: connecting to a missing one would log a FATAL line per poll.
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "postgres"
    try:
        conn = await asyncpg.connect(parts._replace(path="/postgres").geturl(), timeout=2.0)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))
    finally:
        await conn.close()


def _greets(host: str, port: int, hello: bytes, expect: bytes) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            if hello:
                sock.sendall(hello)
            return sock.recv(len(expect)) == expect
    except OSError:
        return False


def probe(url: str) -> bool:
    """One readiness check of ``url`` (see the module table). Never raises for a server that is down."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 0
    if parts.scheme == "grpc":
        return asyncio.run(wait_healthy(f"{host}:{port}", timeout=1.0))
    if parts.scheme in {"http", "https"}:
        return _http(url)
    if parts.scheme in {"postgres", "postgresql"}:
        return asyncio.run(_postgres(url))
    if parts.scheme == "redis":
        return _greets(host, port, b"PING\r\n", b"+PONG")
    if parts.scheme == "nats":
        return _greets(host, port, b"", b"INFO")
    raise ValueError(f"no probe for {url!r}")


def wait_ready(url: str, deadline: float) -> bool:
    """Probe ``url`` until it is ready (True) or ``time.monotonic()`` passes ``deadline`` (False)."""
    while True:
        if probe(url):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
