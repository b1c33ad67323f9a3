"""Our HTTP/1.1 upstream client's connections: TLS with a private CA, redirects as aiohttp followed them, the
per-pool connection limit, connect failures and timeouts, the Host header, and the UPSTREAM_CLIENT switch."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pydantic
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from omniroute_executor.settings import ExecutorSettings
from omniroute_executor.upstream import (
    QueueLimits,
    Upstream,
    UpstreamBlocked,
    UpstreamConnectError,
    UpstreamTimeout,
)
from omniroute_executor.upstream._h1 import Target

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make(**kwargs: object) -> Upstream:
    return Upstream(max_connections=10, connect_timeout_s=1, read_timeout_s=2, **kwargs)  # type: ignore[arg-type]


async def serve(
    routes: dict[str, Route], *, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> web.AppRunner:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, 0, ssl_context=tls).start()
    return runner


@pytest.fixture
async def runners() -> AsyncIterator[list[web.AppRunner]]:
    started: list[web.AppRunner] = []
    yield started
    for runner in started:
        await runner.cleanup()


def port_of(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


# -- TLS ----------------------------------------------------------------------------------------------------------


def _private_ca() -> tuple[ssl.SSLContext, bytes, list[str]]:
    """A CA and a certificate it signed for ``localhost`` only: the server's context (which records the SNI
    names it is offered), the CA certificate (PEM) and that record."""
    now = datetime.datetime.now(datetime.UTC)

    def cert(
        subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_pem = cert("test private CA", "test private CA", ca_key, ca_key, True).public_bytes(serialization.Encoding.PEM)
    leaf = cert("localhost", "test private CA", leaf_key, ca_key, False)
    names: list[str] = []
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as folder:
        chain, key_file = Path(folder) / "chain.pem", Path(folder) / "key.pem"
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca_pem)
        key_file.write_bytes(
            leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server.load_cert_chain(chain, key_file)
    server.sni_callback = lambda _sock, name, _ctx: names.append(name or "")
    return server, ca_pem, names


async def test_tls_with_a_private_ca_sni_and_default_checks(runners: list[web.AppRunner]) -> None:
    peers: list[object] = []

    async def models(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.json_response({"object": "list", "data": []})

    server_tls, ca_pem, sni = _private_ca()
    runner = await serve({"/v1/models": models}, tls=server_tls)
    runners.append(runner)
    url = f"https://localhost:{port_of(runner)}/v1/models"
    trusting = make(tls=ssl.create_default_context(cadata=ca_pem.decode()))
    default = make()
    try:
        for _ in range(2):
            resp = await trusting.get("openai", url, {})
            assert resp.status == 200 and b'"list"' in await resp.read()
            resp.close()
        assert sni == ["localhost"] and len(peers) == 2 and peers[0] == peers[1]  # one TLS connection, reused
        with pytest.raises(UpstreamConnectError, match="certificate verify failed"):
            await default.get("openai", url, {})  # the system CAs do not know ours
        with pytest.raises(UpstreamConnectError, match="certificate"):  # the certificate does not name 127.0.0.1
            await trusting.get("openai", url.replace("localhost", "127.0.0.1"), {})
        assert trusting.gate("openai").in_flight == default.gate("openai").in_flight == 0
    finally:
        await trusting.close()
        await default.close()


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    up = Upstream(max_connections=2, connect_timeout_s=0.2, read_timeout_s=5)
    try:
        with pytest.raises(UpstreamTimeout, match=r"no connection to .* within 0\.2 s"):
            await up.get("p", f"https://localhost:{port}/v1/models", {})
        with pytest.raises(UpstreamConnectError, match="cannot connect"):  # nothing listens there
            await up.get("p", "http://127.0.0.1:9/v1/models", {})
        assert up.gate("p").in_flight == 0
    finally:
        await up.close()
        server.close()


# -- redirects ----------------------------------------------------------------------------------------------------


async def test_redirects_change_the_method_as_aiohttp_did(runners: list[web.AppRunner]) -> None:
    seen: list[tuple[str, str, bytes]] = []

    def moved(status: int) -> Route:
        async def handler(_: web.Request) -> web.Response:
            return web.Response(status=status, headers={"Location": "/v1/target?hop=1"})

        return handler

    async def target(request: web.Request) -> web.Response:
        seen.append((request.method, request.query_string, await request.read()))
        return web.Response(text="done")

    routes: dict[str, Route] = {f"/v1/{status}": moved(status) for status in (301, 302, 303, 307, 308)}
    runner = await serve({**routes, "/v1/target": target})
    runners.append(runner)
    base = f"http://127.0.0.1:{port_of(runner)}/v1"
    up = make()
    try:
        for status in (301, 302, 303, 307, 308):
            resp = await up.post("p", f"{base}/{status}", {"Content-Type": "application/json"}, b'{"a": 1}')
            assert (resp.status, await resp.read()) == (200, b"done")
            resp.close()
        resp = await up.get("p", f"{base}/307", {})
        resp.close()
        assert seen == [
            ("GET", "hop=1", b""),  # a POST's 301 and 302 become a GET without body
            ("GET", "hop=1", b""),
            ("GET", "hop=1", b""),  # 303 always
            ("POST", "hop=1", b'{"a": 1}'),  # 307 and 308 resend the body
            ("POST", "hop=1", b'{"a": 1}'),
            ("GET", "hop=1", b""),
        ]
    finally:
        await up.close()


async def test_redirect_loops_other_origins_and_schemes_are_refused(runners: list[web.AppRunner]) -> None:
    hops: list[str] = []

    async def loop(request: web.Request) -> web.Response:
        hops.append(request.path)
        return web.Response(status=302, headers={"Location": "/v1/loop"})

    async def away(request: web.Request) -> web.Response:
        port = request.url.port
        return web.Response(status=307, headers={"Location": f"http://localhost:{port}/v1/loop"})

    async def ftp(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "ftp://127.0.0.1/file"})

    runner = await serve({"/v1/loop": loop, "/v1/away": away, "/v1/ftp": ftp})
    runners.append(runner)
    base = f"http://127.0.0.1:{port_of(runner)}/v1"
    up = make()
    try:
        with pytest.raises(UpstreamConnectError, match="too many redirects"):
            await up.get("p", f"{base}/loop", {})
        assert len(hops) == 10
        with pytest.raises(UpstreamBlocked, match=r"another origin \(http://localhost:"):  # same address, other name
            await up.post("p", f"{base}/away", {"x-api-key": "secret"}, b"{}")
        assert len(hops) == 10
        with pytest.raises(UpstreamConnectError, match="non-HTTP"):
            await up.get("p", f"{base}/ftp", {})
        assert up.gate("p").in_flight == 0
    finally:
        await up.close()


# -- the pool -----------------------------------------------------------------------------------------------------


async def test_the_pool_opens_at_most_max_connections(runners: list[web.AppRunner]) -> None:
    peers: set[object] = set()
    open_now = 0
    most = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal open_now, most
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        open_now += 1
        most = max(most, open_now)
        await asyncio.sleep(0.1)
        open_now -= 1
        return web.Response(text="ok")

    runner = await serve({"/v1/slow": slow})
    runners.append(runner)
    url = f"http://127.0.0.1:{port_of(runner)}/v1/slow"
    up = Upstream(max_connections=2, connect_timeout_s=1, read_timeout_s=2, limits=QueueLimits(max_concurrent=10))

    async def one() -> bytes:
        resp = await up.get("p", url, {})
        try:
            return await resp.read()
        finally:
            resp.close()

    try:
        assert await asyncio.gather(*(one() for _ in range(6))) == [b"ok"] * 6
        assert (len(peers), most) == (2, 2)
        tight = Upstream(
            max_connections=1, connect_timeout_s=0.05, read_timeout_s=2, limits=QueueLimits(max_concurrent=10)
        )
        held = await tight.get("p", url, {})
        with pytest.raises(UpstreamTimeout, match="all 1 are in use"):  # the wait for a connection is bounded too
            await tight.get("p", url, {})
        held.close()
        await tight.close()
    finally:
        await up.close()


@pytest.mark.parametrize(
    ("url", "host", "path"),
    [
        ("https://api.example.com/v1/chat", "api.example.com", "/v1/chat"),
        ("http://api.example.com:8080/v1?a=b c", "api.example.com:8080", "/v1?a=b+c"),
        ("https://[2001:db8::1]:443/", "[2001:db8::1]", "/"),
        ("http://[2001:db8::1]:8443", "[2001:db8::1]:8443", "/"),
        ("https://bücher.example/x", "xn--bcher-kva.example", "/x"),
    ],
)
def test_the_host_header_and_request_target(url: str, host: str, path: str) -> None:
    target = Target(URL(url))
    assert (target.host_header, target.path) == (host, path)


async def test_an_ipv6_literal_is_sent_bracketed_with_its_port(runners: list[web.AppRunner]) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers["Host"])

    runner = await serve({"/v1/echo": echo}, host="::1")
    runners.append(runner)
    up = make()
    try:
        resp = await up.get("p", f"http://[::1]:{port_of(runner)}/v1/echo", {})
        assert await resp.read() == f"[::1]:{port_of(runner)}".encode()
        resp.close()
    finally:
        await up.close()


# -- the switch ---------------------------------------------------------------------------------------------------


async def test_upstream_client_switches_direct_requests_to_aiohttp(
    runners: list[web.AppRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ExecutorSettings().upstream_client == "h1"
    monkeypatch.setenv("UPSTREAM_CLIENT", "aiohttp")
    assert ExecutorSettings().upstream_client == "aiohttp"
    monkeypatch.setenv("UPSTREAM_CLIENT", "httpx")
    with pytest.raises(pydantic.ValidationError):
        ExecutorSettings()

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello")

    runner = await serve({"/v1/hello": hello})
    runners.append(runner)
    url = f"http://127.0.0.1:{port_of(runner)}/v1/hello"
    for client in ("h1", "aiohttp"):
        up = make(client=client)
        try:
            resp = await up.get("p", url, {})
            assert (resp.status, await resp.read()) == (200, b"hello")
            resp.close()
            # which transport carried it: our pools, or an aiohttp session
            assert (up._h1 is not None, bool(up._sessions)) == (client == "h1", client == "aiohttp")
        finally:
            await up.close()


@pytest.mark.parametrize(
    ("method", "headers", "body"),
    [
        ("POST", {"x-api-key": "k"}, b"{}"),  # no Content-Type: both add application/octet-stream
        (
            "POST",
            {"Content-Type": "application/json", "Authorization": "Bearer k", "Accept": "text/event-stream"},
            b"[]",
        ),
        ("GET", {"x-goog-api-key": "k"}, None),
    ],
)
async def test_both_clients_send_the_same_bytes(method: str, headers: dict[str, str], body: bytes | None) -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await reader.read()
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x?key=a%20b"
    try:
        for client in ("aiohttp", "h1"):
            up = make(client=client)
            resp = await (up.post("p", url, headers, body) if body is not None else up.get("p", url, headers))
            resp.close()
            await up.close()
        assert len(seen) == 2 and seen[0].startswith(f"{method} /v1/x?key=a%20b HTTP/1.1\r\n".encode())
        assert seen[0] == seen[1]
    finally:
        server.close()
