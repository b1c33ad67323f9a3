"""One HTTP/1.1 connection to a provider: an asyncio protocol that parses responses with httptools (llhttp), and
the body of the response in flight on it.

The connection holds at most one exchange at a time (no pipelining). Body bytes are buffered as the network
delivers them; past :data:`_HIGH_WATER` buffered bytes reading pauses until the caller catches up. Every wait for
the network is bounded by the read timeout (the silence between two reads, as aiohttp's ``sock_read``).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from omniroute_executor.upstream._errors import UpstreamConnectError, UpstreamError, UpstreamTimeout

__all__ = ["ClosedBeforeResponse", "Conn", "H1Body"]

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


class ClosedBeforeResponse(UpstreamConnectError):
    """The server closed the connection before sending a byte of the response: on a reused connection, the race
    with its idle timeout, which a retry on a fresh connection resolves (nothing of the request was processed)."""


class Conn(asyncio.Protocol):
    """A pooled connection. ``origin`` is the (scheme, host, port) it talks to; ``uses`` counts the requests sent
    on it (more than 0: a reused connection); ``idle_since`` is the loop time it went back to the pool."""

    def __init__(self, origin: tuple[str, str, int], read_timeout_s: float, on_lost: Callable[[Conn], None]) -> None:
        self.origin = origin
        self.uses = 0
        self.idle_since = 0.0
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._read_timeout = read_timeout_s
        self._on_lost = on_lost
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._exc: UpstreamError | None = None
        self._raw_headers: list[tuple[str, str]] = []
        self.status = 0
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
        self.received = False  # a byte of the current response arrived
        self.head_done = False
        self.done = False  # the whole response arrived
        self.keep_alive = False
        self._until_eof = False
        self._head_only = False
        self._informational = False

    # -- the exchange, from the client's side -------------------------------------------------------------------

    def send(self, data: bytes, *, head_only: bool) -> None:
        """Start an exchange: a fresh parser, then the request in one write."""
        self.uses += 1
        self._parser = httptools.HttpResponseParser(self)
        self._raw_headers = []
        self.received = self.head_done = self.done = self.keep_alive = False
        self._until_eof = self._informational = False
        self._head_only = head_only
        self._exc = None
        assert self.transport is not None
        self.transport.write(data)

    async def read_head(self, url: str) -> None:
        """Wait for the status line and headers (1xx responses skipped)."""
        while not self.head_done:
            if self._exc is not None:
                raise self._exc
            await self._wait(f"no response from {url}")

    async def next_data(self) -> bytes | None:
        """The body bytes buffered so far (waiting for some if none are), or None at the end of the body."""
        while True:
            if self._chunks:
                data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
                self._chunks.clear()
                self._buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self.done:
                return None
            if self._exc is not None:
                raise self._exc
            await self._wait("provider stopped sending")

    @property
    def drained(self) -> bool:
        return not self._chunks

    @property
    def reusable(self) -> bool:
        """The response ended cleanly, all of it was read, and the server keeps the connection open."""
        return self.done and self.keep_alive and not self._chunks and not self.closed

    def idle(self) -> None:
        """Back to the pool: bytes that arrive now are unsolicited and close the connection."""
        self._parser = None
        self.idle_since = self._loop.time()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    async def _wait(self, timeout_message: str) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(self._read_timeout, _expire, waiter, timeout_message)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: UpstreamError) -> None:
        if self._exc is None:
            self._exc = exc
        self._wake()

    # -- asyncio.Protocol ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.done:
            self.keep_alive = False
            self.close()  # unsolicited bytes from the server: the connection's framing cannot be trusted
            return
        self.received = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._malformed("an unexpected protocol upgrade")
        except httptools.HttpParserError as exc:
            self._malformed(str(exc) or type(exc).__name__)

    def _malformed(self, why: str) -> None:
        if self.head_done:
            self._fail(UpstreamError(f"provider sent a malformed response body: {why}"))
        else:
            self._fail(UpstreamConnectError(f"provider sent a malformed response: {why}"))
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is not None and not self.done:
            if self.head_done and self._until_eof:
                self.done = True  # a close-delimited body ends here
                self.keep_alive = False
            elif self.head_done:
                self._fail(UpstreamError("provider broke off the response: the connection closed mid-body"))
            elif not self.received:
                why = f": {exc}" if exc is not None else ""
                self._fail(ClosedBeforeResponse(f"provider closed the connection before responding{why}"))
            else:
                self._fail(UpstreamConnectError("provider closed the connection in the middle of the headers"))
        self._wake()
        self._on_lost(self)

    # -- httptools callbacks ------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.head_done:
            self.keep_alive = False  # a second response to one request: do not reuse this connection

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue, 103 Early Hints: the real response follows
            self._informational = True
            self._raw_headers = []
            return
        self.status = status
        self.headers = headers = CIMultiDictProxy(CIMultiDict(self._raw_headers))
        self.head_done = True
        if self._head_only:
            self.done = True  # no body whatever the headers say; the connection is not reused (keep_alive False)
        else:
            self._until_eof = (
                status not in (204, 304)
                and "content-length" not in headers
                and "chunked" not in headers.get("transfer-encoding", "").lower()
            )
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._head_only:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self.done:  # the end of a HEAD response's phantom body, or of a second response: no reuse
            self.keep_alive = False
            return
        assert self._parser is not None
        self.done = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()


def _expire(waiter: asyncio.Future[None], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(message))


class H1Body:
    """The body of one response: read whole or as network chunks, decoded (gzip, deflate). ``release`` gives the
    connection back (``reuse``: to the pool, else closed); it is called once, at the end of the body or on close."""

    __slots__ = ("_conn", "_decoder", "_encoding", "_release")

    def __init__(self, conn: Conn, release: Callable[[Conn, bool], None]) -> None:
        self._conn: Conn | None = conn
        self._release = release
        encoding = conn.headers.get("content-encoding", "").strip().lower()
        self._encoding = encoding if encoding in ("gzip", "deflate") else ""
        self._decoder: zlib._Decompress | None = None
        if conn.done and conn.drained:
            self.close()  # an empty body (204, 304, Content-Length: 0): the connection is free at once

    async def read(self) -> bytes:
        parts = [data async for data in self.iter_chunks()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        while (conn := self._conn) is not None:
            try:
                data = await conn.next_data()
            except BaseException:
                self.close()
                raise
            if data is None:
                self.close()
                tail = self._flush()
                if tail:
                    yield tail
                return
            if self._encoding:
                data = self._decode(data)
                if not data:
                    continue
            yield data

    def close(self) -> None:
        """Give the connection back; an unfinished body closes it (which cancels the upstream request)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._release(conn, conn.reusable)

    def _decode(self, data: bytes) -> bytes:
        if self._decoder is None:
            # gzip; deflate as zlib-wrapped (RFC 9110) or, as some servers send it, raw (aiohttp accepts both)
            if self._encoding == "gzip":
                wbits = 16 + zlib.MAX_WBITS
            else:
                wbits = zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS
            self._decoder = zlib.decompressobj(wbits)
        try:
            return self._decoder.decompress(data)
        except zlib.error as exc:
            self.close()
            raise UpstreamError(f"provider sent a malformed {self._encoding} body: {exc}") from exc

    def _flush(self) -> bytes:
        if self._decoder is None:
            return b""
        try:
            return self._decoder.flush()
        except zlib.error as exc:
            raise UpstreamError(f"provider sent a malformed {self._encoding} body: {exc}") from exc
