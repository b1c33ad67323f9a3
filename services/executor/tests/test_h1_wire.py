"""Our HTTP/1.1 upstream client against raw loopback servers that control every byte: request framing, response
bodies (Content-Length, chunked, close-delimited, compressed), keep-alive reuse and its retry, broken servers."""

from __future__ import annotations

import asyncio
import gc
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvloop

from omniroute_executor.upstream import Upstream, UpstreamConnectError, UpstreamError, UpstreamTimeout

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request, head and body (by its Content-Length); IncompleteReadError when the client left."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


class Raw:
    """A loopback server; ``handle`` runs for every connection. Records connections and requests."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        raw = await read_request(reader)
        self.requests.append(raw)
        return raw

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def answering(*responses: bytes) -> Callable[[Raw], Handler]:
    """A handler that answers the requests on each connection with ``responses`` in turn, then waits for EOF."""

    def make(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for response in responses:
                await server.request(reader)
                writer.write(response)
            await reader.read()

        return handle

    return make


Start = Callable[[Callable[[Raw], Handler]], Awaitable[Raw]]


@pytest.fixture
async def raw() -> AsyncIterator[Start]:
    servers: list[Raw] = []

    async def start(make: Callable[[Raw], Handler]) -> Raw:
        server = Raw(lambda r, w: asyncio.sleep(0))
        server.handle = make(server)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.server.close()


def make(**kwargs: object) -> Upstream:
    return Upstream(max_connections=10, connect_timeout_s=1, read_timeout_s=1, **kwargs)  # type: ignore[arg-type]


async def fetch(up: Upstream, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    resp = await up.post("p", url, {"Content-Type": "application/json"}, body)
    try:
        return resp.status, await resp.read()
    finally:
        resp.close()


async def test_the_request_is_one_exact_write_without_user_agent(raw: Start) -> None:
    seen: list[bytes] = []

    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await reader.read(65536))  # what one write delivers on loopback
            writer.write(OK)
            await reader.read()

        return handle

    server = await raw(make_handler)
    up = make()
    try:
        resp = await up.post("p", server.url + "?x=1", {"Content-Type": "application/json", "x-api-key": "k"}, b"{}")
        assert resp.status == 200 and await resp.read() == b"ok"
        resp.close()
        assert seen == [
            b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{server.port}\r\n".encode()
            + b"Content-Type: application/json\r\nx-api-key: k\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
            b"Content-Length: 2\r\n\r\n{}"
        ]
        with pytest.raises(UpstreamConnectError, match="line break"):  # header injection: nothing is sent
            await up.get("p", server.url, {"x-api-key": "k\r\nX-Evil: 1"})
        assert server.connections == 1 and up.gate("p").in_flight == 0
    finally:
        await up.close()


async def test_chunked_bodies_with_extensions_and_trailers_then_keep_alive(raw: Start) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server = await raw(answering(chunked, OK, OK, OK, OK))
    up = make()
    try:
        resp = await up.post("p", server.url, {}, b"{}")
        assert resp.headers.getall("SET-COOKIE") == ["a=1", "b=2"]  # type: ignore[attr-defined]
        assert await resp.read() == b"hello world"
        resp.close()
        for _ in range(4):
            assert await fetch(up, server.url) == (200, b"ok")
        assert server.connections == 1 and len(server.requests) == 5
    finally:
        await up.close()


async def test_chunks_arrive_as_the_network_delivers_them(raw: Start) -> None:
    go_on = asyncio.Event()

    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n")
            await go_on.wait()
            writer.write(b"2\r\nhi\r\n0\r\n\r\n")
            await reader.read()

        return handle

    server = await raw(make_handler)
    up = make()
    try:
        resp = await up.post("p", server.url, {}, b"{}")
        chunks = resp.iter_chunks()
        assert await anext(chunks) == b"data: "  # before the server sent the rest
        go_on.set()
        assert [c async for c in chunks] == [b"hi"]
        resp.close()
    finally:
        await up.close()


async def test_connection_close_and_close_delimited_bodies(raw: Start) -> None:
    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            if len(server.requests) == 1:  # Connection: close with a Content-Length; the socket stays open
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
                await reader.read()
            else:  # no length at all: the body ends when the server closes
                writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the ")
                await asyncio.sleep(0.05)
                writer.write(b"end")

        return handle

    server = await raw(make_handler)
    up = make()
    try:
        assert await fetch(up, server.url) == (200, b"ok")
        assert await fetch(up, server.url) == (200, b"until the end")
        assert server.connections == 2
    finally:
        await up.close()


async def test_no_body_statuses_and_informational_responses(raw: Start) -> None:
    server = await raw(
        answering(
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
        )
    )
    up = make()
    try:
        assert await fetch(up, server.url) == (204, b"")
        assert await fetch(up, server.url) == (304, b"")
        assert await fetch(up, server.url) == (201, b"new")
        assert server.connections == 1
    finally:
        await up.close()


async def test_a_head_response_has_no_body_whatever_its_length(raw: Start) -> None:
    from omniroute_executor.upstream._guard import GuardedResolver, HostCheck
    from omniroute_executor.upstream._h1 import H1Client

    server = await raw(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"))
    client = H1Client(
        max_connections=2,
        connect_timeout_s=1,
        read_timeout_s=1,
        tls=None,
        resolver=GuardedResolver(),
        check=HostCheck(),
    )
    try:
        status, headers, body = await client.request("p", "HEAD", server.url, {}, None)
        assert (status, headers["content-length"], await body.read()) == (200, "10", b"")
        assert server.requests[0].startswith(b"HEAD /v1/chat/completions HTTP/1.1\r\n")
        assert b"Content-Length" not in server.requests[0]
    finally:
        client.close()


async def test_a_reused_connection_closed_by_the_server_is_retried_once(raw: Start) -> None:
    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(OK)
            await server.request(reader)  # the idle timeout strikes as the second request arrives: no answer

        return handle

    server = await raw(make_handler)
    up = make()
    try:
        assert await fetch(up, server.url, b'{"n": 1}') == (200, b"ok")
        assert await fetch(up, server.url, b'{"n": 2}') == (200, b"ok")  # resent on a fresh connection
        assert server.connections == 2
        assert [r.endswith(b'{"n": 2}') for r in server.requests] == [False, True, True]
    finally:
        await up.close()


async def test_no_retry_once_the_answer_began_or_on_a_fresh_connection(raw: Start) -> None:
    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            if len(server.requests) == 1:
                writer.write(OK)
                await server.request(reader)
                writer.write(b"HTTP/1.1 200")  # part of a status line, then gone
            # later connections: closed without a word

        return handle

    server = await raw(make_handler)
    up = make()
    try:
        assert await fetch(up, server.url) == (200, b"ok")
        with pytest.raises(UpstreamConnectError, match="middle of the headers"):
            await fetch(up, server.url)
        with pytest.raises(UpstreamConnectError, match="closed the connection before responding"):
            await fetch(up, server.url)
        assert (server.connections, len(server.requests)) == (2, 3)
        assert up.gate("p").in_flight == 0
    finally:
        await up.close()


@pytest.mark.parametrize("how", ["read", "iter_chunks"])
async def test_a_server_closing_mid_body_is_an_upstream_error(raw: Start, how: str) -> None:
    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")

        return handle

    server = await raw(make_handler)
    up = make()
    try:
        resp = await up.post("p", server.url, {}, b"{}")
        with pytest.raises(UpstreamError, match="broke off"):
            await (resp.read() if how == "read" else _drain(resp.iter_chunks()))
        resp.close()
        assert up.gate("p").in_flight == 0
    finally:
        await up.close()


async def _drain(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


@pytest.mark.parametrize(
    "answer", [b"HTTX/1.1 200 OK\r\n\r\n", b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"]
)
async def test_a_malformed_response_is_a_clear_error(raw: Start, answer: bytes) -> None:
    server = await raw(answering(answer))
    up = make()
    try:
        with pytest.raises(UpstreamConnectError, match="malformed response"):
            await fetch(up, server.url)
        assert up.gate("p").in_flight == 0
    finally:
        await up.close()


async def test_silence_is_a_read_timeout_before_and_during_the_body(raw: Start) -> None:
    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            if len(server.requests) == 2:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nsome")
            await reader.read()

        return handle

    server = await raw(make_handler)
    up = Upstream(max_connections=10, connect_timeout_s=1, read_timeout_s=0.2)
    try:
        with pytest.raises(UpstreamTimeout, match="no response from"):
            await fetch(up, server.url)
        resp = await up.post("p", server.url, {}, b"{}")
        chunks = resp.iter_chunks()
        assert await anext(chunks) == b"some"
        with pytest.raises(UpstreamTimeout, match="stopped sending"):
            await anext(chunks)
        resp.close()
        assert up.gate("p").in_flight == 0
    finally:
        await up.close()


async def test_close_mid_body_closes_the_connection(raw: Start) -> None:
    gone = asyncio.Event()

    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            assert await reader.read() == b""  # the client hung up
            gone.set()

        return handle

    server = await raw(make_handler)
    up = make()
    try:
        resp = await up.post("p", server.url, {}, b"{}")
        assert await anext(resp.iter_chunks()) == b"first"
        resp.close()
        await asyncio.wait_for(gone.wait(), 2)
        assert up.gate("p").in_flight == 0
    finally:
        await up.close()


async def test_a_response_dropped_without_close_frees_its_slot_and_connection(raw: Start) -> None:
    gone = asyncio.Event()

    def make_handler(server: Raw) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            await reader.read()
            gone.set()

        return handle

    server = await raw(make_handler)
    up = make()
    try:
        resp = await up.post("p", server.url, {}, b"{}")
        assert up.gate("p").in_flight == 1
        del resp
        gc.collect()
        await asyncio.wait_for(gone.wait(), 2)
        assert up.gate("p").in_flight == 0
    finally:
        await up.close()


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", lambda b: zlib.compress(b, wbits=-15))],
)
async def test_compressed_bodies_are_decoded(raw: Start, encoding: str, pack: Callable[[bytes], bytes]) -> None:
    text = b'{"choices": []}' * 200
    packed = pack(text)
    half = len(packed) // 2
    chunked = b"".join(
        [f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()]
        + [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (packed[:half], packed[half:])]
        + [b"0\r\n\r\n"]
    )
    server = await raw(answering(chunked, chunked))
    up = make()
    try:
        assert await fetch(up, server.url) == (200, text)
        resp = await up.post("p", server.url, {}, b"{}")
        assert b"".join([c async for c in resp.iter_chunks()]) == text
        resp.close()
    finally:
        await up.close()


def test_on_uvloop_whose_transports_differ_from_asyncio() -> None:
    """The executor runs on uvloop (the tests above on asyncio's loop): keep-alive, chunked and gzip there too."""
    packed = gzip.compress(b"hello")
    chunked = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += f"{len(packed):x}\r\n".encode() + packed + b"\r\n0\r\n\r\n"

    async def scenario() -> tuple[list[tuple[int, bytes]], int]:
        server = Raw(lambda r, w: asyncio.sleep(0))
        server.handle = answering(OK, chunked)(server)
        await server.start()
        up = make()
        try:
            return [await fetch(up, server.url), await fetch(up, server.url)], server.connections
        finally:
            await up.close()
            server.server.close()

    assert uvloop.run(scenario()) == ([(200, b"ok"), (200, b"hello")], 1)
