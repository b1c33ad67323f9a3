"""A tiny forward HTTP proxy on loopback, for proving that the gateway's outbound requests go through it.

It speaks the two things a client asks of an HTTP proxy: an absolute-URI request (``POST http://host:port/path
HTTP/1.1``), forwarded to the origin in origin form with ``Connection: close`` and relayed back byte for byte;
and ``CONNECT host:port`` (how HTTPS targets are reached), answered ``200`` and then piped both ways. Every
request is recorded (:attr:`FakeProxy.seen`: method, target, ``Proxy-Authorization``), and ``required_auth``
makes it answer ``407`` to requests without that exact ``Proxy-Authorization`` value.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["FakeProxy", "Seen", "basic_auth"]


def basic_auth(user: str, password: str) -> str:
    """The ``Proxy-Authorization`` value a client sends for these credentials (for ``required_auth``)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Seen:
    method: str
    target: str  # the absolute URI, or host:port for CONNECT
    proxy_authorization: str


class FakeProxy:
    def __init__(self, *, required_auth: str | None = None) -> None:
        self.seen: list[Seen] = []
        self.required_auth = required_auth
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; True when the client connection may carry another."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
        auth = next((v.strip() for k, v in headers if k.strip().lower() == "proxy-authorization"), "")
        self.seen.append(Seen(method, target, auth))
        if self.required_auth is not None and auth != self.required_auth:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return True
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _pipe_both(reader, writer, up_reader, up_writer)
            return False
        parts = urlsplit(target)
        length = int(next((v for k, v in headers if k.strip().lower() == "content-length"), "0"))
        body = await reader.readexactly(length) if length else b""
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [
            f"{k}:{v}"
            for k, v in headers
            if k.strip().lower() not in ("proxy-authorization", "proxy-connection", "connection")
        ]
        out = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode("latin-1")
        up_writer.write(out + body)
        await up_writer.drain()
        # the origin closes after its reply (Connection: close), which ends the relay and this client connection
        while data := await up_reader.read(65536):
            writer.write(data)
            await writer.drain()
        up_writer.close()
        return False


async def _pipe_both(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    await asyncio.gather(pipe(a_reader, b_writer), pipe(b_reader, a_writer))
