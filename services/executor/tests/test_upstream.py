"""The upstream seam with real sockets: the per-provider concurrency queue, the address guard at connect time, and
requests through a real forward proxy (absolute URIs for http://, CONNECT for https://)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry

import omniroute_executor.upstream as upstream_pkg
from omniroute_core import jsonx
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.fake_proxy import FakeProxy, basic_auth
from omniroute_executor.upstream import QueueLimits, Upstream, UpstreamBlocked, UpstreamBusy, UpstreamConnectError

HEADERS = {"Content-Type": "application/json"}
BODY = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'


class MapResolver(AbstractResolver):
    """Names → chosen addresses (what a hostile or careless DNS answer would say)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        address = self.names[host.rstrip(".")]
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0, flags=0)]

    async def close(self) -> None:
        return None


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[FakeProxy]:
    server = FakeProxy()
    await server.start()
    yield server
    await server.stop()


def make(**kwargs: object) -> Upstream:
    return Upstream(max_connections=10, connect_timeout_s=2, read_timeout_s=5, **kwargs)  # type: ignore[arg-type]


def test_the_public_surface_is_pinned() -> None:
    assert sorted(upstream_pkg.__all__) == [
        "GuardedResolver",
        "QueueLimits",
        "Upstream",
        "UpstreamBlocked",
        "UpstreamBusy",
        "UpstreamConnectError",
        "UpstreamError",
        "UpstreamResponse",
        "UpstreamTimeout",
    ]


# -- the concurrency queue --------------------------------------------------------------------------------------


async def test_a_full_provider_refuses_at_once_without_connecting(fake: FakeOpenAI) -> None:
    registry = CollectorRegistry()
    up = make(limits=QueueLimits(max_concurrent=1, max_queued=0), registry=registry)
    fake.script.append(Reply(json=fake.completion("gpt-4o"), delay_s=0.5))
    url = fake.base_url + "/chat/completions"
    try:
        first = asyncio.create_task(up.post("openai", url, HEADERS, BODY))
        await asyncio.sleep(0.1)
        assert registry.get_sample_value("omniroute_upstream_in_flight", {"provider": "openai"}) == 1
        with pytest.raises(UpstreamBusy) as busy:
            await up.post("openai", url, HEADERS, BODY)
        assert busy.value.retry_after_ms == 1000 and "concurrency limit" in str(busy.value)
        assert len(fake.requests) == 1  # the refused one never reached the provider
        assert registry.get_sample_value("omniroute_upstream_refused_total", {"provider": "openai"}) == 1
        # another provider's pool is not affected
        other = await up.post("groq", url, HEADERS, BODY)
        other.close()
        resp = await first
        assert resp.status == 200 and (await resp.read())
        resp.close()
        assert registry.get_sample_value("omniroute_upstream_in_flight", {"provider": "openai"}) == 0
        again = await up.post("openai", url, HEADERS, BODY)
        again.close()
    finally:
        await up.close()


async def test_waiters_get_freed_slots_in_order_and_time_out(fake: FakeOpenAI) -> None:
    up = make(limits=QueueLimits(max_concurrent=1, max_queued=1, queue_timeout_s=2))
    url = fake.base_url + "/chat/completions"
    try:
        holder = await up.post("openai", url, HEADERS, BODY)
        waiting = asyncio.create_task(up.post("openai", url, HEADERS, BODY))
        await asyncio.sleep(0.05)
        assert up.gate("openai").queued == 1
        with pytest.raises(UpstreamBusy):  # the line is full
            await up.post("openai", url, HEADERS, BODY)
        holder.close()
        served = await waiting
        assert served.status == 200
        with pytest.raises(UpstreamBusy, match=r"no free slot within 0\.1 s"):
            await up.post("openai", url, HEADERS, BODY, limits=QueueLimits(1, 5, 0.1))
        served.close()
        assert (up.gate("openai").in_flight, up.gate("openai").queued) == (0, 0)
    finally:
        await up.close()


async def test_slots_come_back_on_errors_cancellation_and_early_close(fake: FakeOpenAI) -> None:
    up = make(limits=QueueLimits(max_concurrent=1, max_queued=0))
    gate = up.gate("openai")
    url = fake.base_url + "/chat/completions"
    try:
        with pytest.raises(UpstreamConnectError):  # nothing listens there
            await up.post("openai", "http://127.0.0.1:9/v1/chat/completions", HEADERS, BODY)
        assert gate.in_flight == 0
        fake.script.append(Reply(hang=True))
        hanging = asyncio.create_task(up.post("openai", url, HEADERS, BODY))
        await asyncio.sleep(0.1)
        assert gate.in_flight == 1
        hanging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hanging
        assert gate.in_flight == 0
        fake.script.append(Reply(events=fake.chunks("gpt-4o", include_usage=False), chunk_delay_s=0.05))
        stream = await up.post("openai", url, HEADERS, BODY)
        async for _ in stream.iter_chunks():
            break  # the client left after the first bytes
        stream.close()
        stream.close()  # idempotent: the slot is released once
        assert gate.in_flight == 0
    finally:
        await up.close()


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    up = make(limits=QueueLimits(max_concurrent=1, max_queued=1, queue_timeout_s=5))
    gate = up.gate("p")
    await gate.acquire(up.default_limits)
    waiter = asyncio.create_task(gate.acquire(up.default_limits))
    await asyncio.sleep(0.01)
    assert gate.queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.queued == 0
    gate.release()
    assert gate.in_flight == 0
    await up.close()


# -- the link-local / metadata guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.1.1:8080/v1",
        "http://[fe80::1]/v1",
        "http://[::ffff:169.254.169.254]/latest",
        "http://[::ffff:a9fe:a9fe]/latest",
        "http://[fd00:ec2::254]/latest",
        "http://100.100.100.200/latest",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata.goog./computeMetadata/v1/",
        "http://2852039166/latest",
    ],
)
async def test_literal_and_metadata_addresses_are_refused_before_any_connection(url: str) -> None:
    resolver = MapResolver({})
    up = make(resolver=resolver)
    try:
        with pytest.raises(UpstreamBlocked, match="ALLOW_LINK_LOCAL_PROVIDERS"):
            await up.post("openai", url, HEADERS, BODY)
        assert resolver.asked == []  # refused before DNS too
        assert up.gate("openai").in_flight == 0
    finally:
        await up.close()


async def test_a_name_resolving_to_a_link_local_address_is_refused(fake: FakeOpenAI) -> None:
    resolver = MapResolver({"evil.test": "169.254.169.254", "v6.test": "fe80::5", "good.test": "127.0.0.1"})
    up = make(resolver=resolver)
    try:
        with pytest.raises(UpstreamBlocked, match=r"evil\.test resolves to 169\.254\.169\.254"):
            await up.post("openai", f"http://evil.test:{fake.port}/v1/chat/completions", HEADERS, BODY)
        with pytest.raises(UpstreamBlocked, match="link-local"):
            await up.get("openai", f"http://v6.test:{fake.port}/v1/models", {})
        # the same resolver, a loopback answer: a real connection to the fake provider
        resp = await up.post("openai", f"http://good.test:{fake.port}/v1/chat/completions", HEADERS, BODY)
        assert resp.status == 200
        resp.close()
        assert len(fake.requests) == 1
    finally:
        await up.close()


async def test_loopback_as_an_ipv4_mapped_literal_is_allowed(fake: FakeOpenAI) -> None:
    up = make()
    try:
        resp = await up.post("openai", f"http://[::ffff:127.0.0.1]:{fake.port}/v1/chat/completions", HEADERS, BODY)
        assert resp.status == 200
        resp.close()
    finally:
        await up.close()


async def test_the_allow_switch_turns_the_guard_off(fake: FakeOpenAI) -> None:
    resolver = MapResolver({"metadata.google.internal": "127.0.0.1"})
    guarded, allowed = make(resolver=resolver), make(resolver=resolver, allow_link_local=True)
    url = f"http://metadata.google.internal:{fake.port}/v1/chat/completions"
    try:
        with pytest.raises(UpstreamBlocked):
            await guarded.post("openai", url, HEADERS, BODY)
        resp = await allowed.post("openai", url, HEADERS, BODY)
        assert resp.status == 200
        resp.close()
    finally:
        await guarded.close()
        await allowed.close()


async def test_a_proxy_on_a_metadata_address_is_refused(fake: FakeOpenAI) -> None:
    up = make()
    try:
        with pytest.raises(UpstreamBlocked):
            await up.post(
                "openai", fake.base_url + "/chat/completions", HEADERS, BODY, proxy="http://169.254.169.254:3128"
            )
    finally:
        await up.close()


# -- through a proxy ------------------------------------------------------------------------------------------


async def test_plain_http_goes_through_the_proxy_with_its_credentials(fake: FakeOpenAI, proxy: FakeProxy) -> None:
    up = make()
    url = fake.base_url + "/chat/completions"
    try:
        resp = await up.post("openai", url, HEADERS, BODY, proxy=proxy.url.replace("//", "//user:p%40ss@"))
        assert resp.status == 200 and (await resp.read())
        resp.close()
        assert [(s.method, s.target) for s in proxy.seen] == [("POST", url)]
        assert proxy.seen[0].proxy_authorization == "Basic dXNlcjpwQHNz"  # user:p@ss
        assert fake.requests[0].json["model"] == "gpt-4o"
        assert "Proxy-Authorization" not in fake.requests[0].headers
        direct = await up.post("openai", url, HEADERS, BODY)
        direct.close()
        assert len(proxy.seen) == 1 and len(fake.requests) == 2
    finally:
        await up.close()


def _tls_pair(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for ``localhost``: the server's context and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_https_tunnels_through_the_proxy_with_connect(proxy: FakeProxy) -> None:
    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    with tempfile.TemporaryDirectory() as folder:
        server_tls, client_tls = _tls_pair(Path(folder))
        app = web.Application()
        app.router.add_get("/v1/models", models)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
        await site.start()
        port = runner.addresses[0][1]
        up = make(tls=client_tls)
        try:
            resp = await up.get("openai", f"https://localhost:{port}/v1/models", {}, proxy=proxy.url)
            assert resp.status == 200 and b'"list"' in await resp.read()
            resp.close()
            assert [(s.method, s.target) for s in proxy.seen] == [("CONNECT", f"localhost:{port}")]
        finally:
            await up.close()
            await runner.cleanup()


async def _redirecting(location: str) -> tuple[web.AppRunner, str]:
    """A provider that answers every request with a 307 to ``location``; returns the runner and its base URL."""

    async def redirect(_: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": location})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.mark.parametrize(
    "location",
    ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/latest"],
)
async def test_a_redirect_to_a_metadata_address_is_refused_not_followed(location: str) -> None:
    runner, base = await _redirecting(location)
    up = make(resolver=MapResolver({}))
    try:
        with pytest.raises(UpstreamBlocked, match="ALLOW_LINK_LOCAL_PROVIDERS"):
            await up.post("openai", base + "/v1/chat/completions", HEADERS, BODY)
        assert up.gate("openai").in_flight == 0
    finally:
        await up.close()
        await runner.cleanup()


async def test_a_redirect_within_the_origin_is_followed(fake: FakeOpenAI) -> None:
    async def moved(_: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "/v1/moved"})

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "key": request.headers.get("x-api-key")})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", moved)
    app.router.add_post("/v1/moved", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    up = make()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/chat/completions"
        resp = await up.post("openai", url, {**HEADERS, "x-api-key": "k"}, BODY)
        assert resp.status == 200 and jsonx.loads(await resp.read()) == {"ok": True, "key": "k"}
        resp.close()
    finally:
        await up.close()
        await runner.cleanup()


@pytest.mark.parametrize("allow_link_local", [False, True])
async def test_a_redirect_to_another_origin_is_refused_and_never_carries_the_key(
    fake: FakeOpenAI, allow_link_local: bool
) -> None:
    # aiohttp drops only Authorization on a cross-origin hop; x-api-key, api-key and x-goog-api-key would follow
    runner, base = await _redirecting(fake.base_url + "/chat/completions")
    up = make(allow_link_local=allow_link_local)
    try:
        with pytest.raises(UpstreamBlocked, match="another origin"):
            await up.post("openai", base + "/v1/chat/completions", {**HEADERS, "x-api-key": "secret"}, BODY)
        assert fake.requests == []
        assert up.gate("openai").in_flight == 0
    finally:
        await up.close()
        await runner.cleanup()


async def test_a_proxy_failure_never_names_the_proxy_password() -> None:
    strict = FakeProxy(required_auth=basic_auth("user", "right"))
    await strict.start()
    up = make()
    proxy_url = strict.url.replace("//", "//user:s3cret-pw@")
    try:
        with pytest.raises(UpstreamConnectError) as refused:  # 407 to the CONNECT of an https target
            await up.get("openai", "https://localhost:9/v1/models", {}, proxy=proxy_url)
        assert "s3cret-pw" not in str(refused.value)
        assert strict.seen[0].proxy_authorization == basic_auth("user", "s3cret-pw")
    finally:
        await up.close()
        await strict.stop()


async def test_raising_the_limit_lets_the_waiting_line_in() -> None:
    up = make()
    gate = up.gate("p")
    one = QueueLimits(max_concurrent=1, max_queued=5, queue_timeout_s=5)
    three = QueueLimits(max_concurrent=3, max_queued=5, queue_timeout_s=5)
    await gate.acquire(one)
    waiter = asyncio.create_task(gate.acquire(one))
    await asyncio.sleep(0.01)
    assert gate.queued == 1
    # the limit went up in the live config: the next request and the one already waiting both get a slot
    await asyncio.wait_for(gate.acquire(three), 1)
    await asyncio.wait_for(waiter, 1)
    assert (gate.in_flight, gate.queued) == (3, 0)
    for _ in range(3):
        gate.release()
    assert gate.in_flight == 0
    await up.close()
