"""Our HTTP/1.1 client for direct provider requests: asyncio protocols and httptools, pooled per provider.

Why not aiohttp here: a non-streaming chat spent ~80-90 µs of executor CPU per request in aiohttp's client
(middleware chain, auto headers, writer, timeout handles) where a raw asyncio + httptools client costs under
30 µs (bench/PROFILE.md). This client does only what provider requests need: keep-alive pools, one write per
request, Content-Length / chunked / close-delimited bodies, gzip and deflate, same-origin redirects, the address
guard on every connection. Requests through an outbound proxy stay on aiohttp (:mod:`._client`): CONNECT
tunnels, proxy credentials and 407 handling are a protocol of their own, rare on the hot path, and aiohttp's
handling of them is tested against a real proxy.

What it matches from the aiohttp setup it replaces: ``Accept: */*`` and ``Accept-Encoding: gzip, deflate`` unless
given (brotli and zstd are not installed, so aiohttp offered neither), no ``User-Agent``, ``Content-Type:
application/octet-stream`` for a body without one, redirects as aiohttp follows them (303 and a POST's 301/302
become a GET without body; 307/308 resend the body; 10 redirects are too many), the connect timeout covering the
wait for a pooled connection, DNS answers cached 300 s, idle connections kept 15 s.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import Mapping
from typing import Any

from yarl import URL

from omniroute_executor.upstream._errors import UpstreamBlocked, UpstreamBusy, UpstreamConnectError, UpstreamTimeout
from omniroute_executor.upstream._gate import Gate, QueueLimits
from omniroute_executor.upstream._guard import HostCheck, RefusedAddress, Resolver
from omniroute_executor.upstream._h1conn import ClosedBeforeResponse, Conn, H1Body

__all__ = ["H1Client", "H1Pool", "Target"]

_KEEPALIVE_S = 15.0
_DNS_TTL_S = 300.0
_MAX_REDIRECTS = 10
_FRAMING = frozenset({"content-length", "transfer-encoding", "host"})


class Target:
    """A parsed request URL (parsed once per distinct URL: see :meth:`H1Client.target`)."""

    __slots__ = ("host", "host_header", "literal", "origin", "path", "text", "url")

    def __init__(self, url: URL, text: str = "") -> None:
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise UpstreamConnectError(f"cannot send a request to {url}: not an http(s) URL with a host")
        self.url = url
        self.text = text or str(url)  # for messages (yarl builds its string anew on every str())
        self.host = url.raw_host
        self.origin = (url.scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        self.host_header = url.host_port_subcomponent or url.raw_host
        self.path = url.raw_path_qs or "/"
        try:
            ipaddress.ip_address(self.host.split("%", 1)[0])
            self.literal = True
        except ValueError:
            self.literal = False


class H1Pool:
    """One provider's connections: idle ones per origin (most recent first), at most ``max_connections`` in use."""

    def __init__(self, name: str, max_connections: int, connect_timeout_s: float) -> None:
        self.slots = Gate(f"{name} connections")
        self.limits = QueueLimits(max_concurrent=max_connections, max_queued=1 << 30, queue_timeout_s=connect_timeout_s)
        self.idle: dict[tuple[str, str, int], deque[Conn]] = {}
        self.live: set[Conn] = set()

    def take_idle(self, origin: tuple[str, str, int], now: float) -> Conn | None:
        idle = self.idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < _KEEPALIVE_S:
                return conn
            conn.close()
        return None

    def put_idle(self, conn: Conn) -> None:
        conn.idle()
        idle = self.idle.setdefault(conn.origin, deque())
        while idle and (idle[0].closed or conn.idle_since - idle[0].idle_since >= _KEEPALIVE_S):
            idle.popleft().close()  # the oldest are the first to expire
        idle.append(conn)

    def release(self, conn: Conn, reuse: bool) -> None:
        """End a lease: the connection back to the pool or closed, and its slot free."""
        if reuse:
            self.put_idle(conn)
        else:
            conn.close()
        self.slots.release()

    def close(self) -> None:
        for conn in list(self.live):
            conn.close()
        self.idle.clear()


class H1Client:
    """The shared half: URL and DNS caches, the address guard, TLS, connecting; the pools are per provider.

    ``resolver`` resolves host names for new connections (a guarded one unless the guard is off); ``check``
    refuses IP-literal and metadata hosts (None: the guard is off).
    """

    def __init__(
        self,
        *,
        max_connections: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        tls: ssl.SSLContext | None,
        resolver: Resolver,
        check: HostCheck | None,
    ) -> None:
        self._max = max_connections
        self._connect_timeout = connect_timeout_s
        self._read_timeout = read_timeout_s
        self._tls = tls
        self._resolver = resolver
        self._check = check
        self._targets: dict[str, Target] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[tuple[int, Any]]]] = {}
        self._pools: dict[str, H1Pool] = {}

    def pool(self, name: str) -> H1Pool:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = H1Pool(name, self._max, self._connect_timeout)
        return pool

    def target(self, url: str | URL) -> Target:
        if isinstance(url, URL):
            return Target(url)
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) > 4096:
                self._targets.clear()
            try:
                parsed = URL(url)
            except ValueError as exc:
                raise UpstreamConnectError(f"cannot send a request to {url!r}: {exc}") from exc
            target = self._targets[url] = Target(parsed, url)
        return target

    async def request(
        self, pool_name: str, method: str, url: str, headers: Mapping[str, str], body: bytes | memoryview | None
    ) -> tuple[int, Any, H1Body]:
        """Send the request, follow same-origin redirects, and return the status, headers and body of the answer.
        Errors are :class:`UpstreamError` subclasses; nothing is left open when one is raised."""
        pool = self.pool(pool_name)
        target = self.target(url)
        origin = target.origin
        for _ in range(_MAX_REDIRECTS):
            conn = await self._exchange(pool, method, target, headers, body)
            status = conn.status
            location = conn.headers.get("location") if status in (301, 302, 303, 307, 308) else None
            response = H1Body(conn, pool.release)
            if location is None:
                return status, conn.headers, response
            response.close()  # an unread redirect body: the connection is closed, not drained
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
            target = self._redirect(target, location)
            if self._check is not None:
                self._check.check(target.host)
            if target.origin != origin:
                scheme, host, port = target.origin
                raise UpstreamBlocked(
                    f"refused to follow a redirect to another origin ({scheme}://{host}:{port}):"
                    " it would carry the provider credentials"
                )
        raise UpstreamConnectError(f"request to {url} failed: too many redirects ({_MAX_REDIRECTS})")

    def _redirect(self, current: Target, location: str) -> Target:
        try:
            new = URL(location, encoded=True)
        except ValueError as exc:
            raise UpstreamConnectError(f"provider redirected to an invalid URL {location!r}") from exc
        if new.scheme not in ("", "http", "https"):
            raise UpstreamConnectError(f"provider redirected to a non-HTTP URL {location!r}")
        return Target(current.url.join(new) if not new.absolute else new)

    async def _exchange(
        self, pool: H1Pool, method: str, target: Target, headers: Mapping[str, str], body: bytes | memoryview | None
    ) -> Conn:
        """One request on a pooled connection, once more on a fresh one if a reused connection turned out closed
        before any byte of the answer (the server's idle timeout raced us; the request was not processed)."""
        data = _serialize(method, target, headers, body)
        for attempt in (0, 1):
            conn = await self._lease(pool, target, fresh=attempt > 0)
            try:
                conn.send(data, head_only=method == "HEAD")
                await conn.read_head(target.text)
            except ClosedBeforeResponse:
                pool.release(conn, False)
                if conn.uses > 1 and attempt == 0:
                    continue
                raise
            except BaseException:
                pool.release(conn, False)
                raise
            return conn
        raise AssertionError("unreachable")

    async def _lease(self, pool: H1Pool, target: Target, *, fresh: bool) -> Conn:
        if self._check is not None:
            self._check.check(target.host)
        try:
            await pool.slots.acquire(pool.limits)
        except UpstreamBusy:
            raise UpstreamTimeout(
                f"no connection to {target.text} within {self._connect_timeout:g} s: all {self._max} are in use"
            ) from None
        try:
            if not fresh and (conn := pool.take_idle(target.origin, asyncio.get_running_loop().time())):
                return conn
            async with asyncio.timeout(self._connect_timeout):
                return await self._connect(pool, target)
        except TimeoutError:
            pool.slots.release()
            raise UpstreamTimeout(f"no connection to {target.text} within {self._connect_timeout:g} s") from None
        except BaseException:
            pool.slots.release()
            raise

    async def _connect(self, pool: H1Pool, target: Target) -> Conn:
        """A new connection to the checked address itself (no second resolution)."""
        loop = asyncio.get_running_loop()
        sock = await self._socket(target)
        tls = None if target.origin[0] == "http" else self._tls_context()
        conn = Conn(target.origin, self._read_timeout, pool.live.discard)
        try:
            await loop.create_connection(
                lambda: conn, sock=sock, ssl=tls, server_hostname=target.host.rstrip(".") if tls else None
            )
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise UpstreamConnectError(f"cannot connect to {target.text}: {exc}") from exc
        except BaseException:
            sock.close()
            raise
        pool.live.add(conn)
        return conn

    async def _socket(self, target: Target) -> socket.socket:
        """A TCP socket connected to the first address of the host that answers."""
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        for family, address in await self._addresses(target, target.origin[2]):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                errors.append(f"{address[0]}:{address[1]}: {exc.strerror or exc}")
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise UpstreamConnectError(f"cannot connect to {target.text}: {'; '.join(errors) or 'no address'}")

    async def _addresses(self, target: Target, port: int) -> list[tuple[int, Any]]:
        host = target.host
        if target.literal:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return [(family, (host, port))]
        loop = asyncio.get_running_loop()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > loop.time():
            return cached[1]
        try:
            results = await self._resolver.resolve(host, port, family=socket.AF_UNSPEC)
        except RefusedAddress as exc:
            raise UpstreamBlocked(f"refused to connect to {target.text}: {exc}") from exc
        except OSError as exc:
            raise UpstreamConnectError(f"cannot connect to {target.text}: {exc.strerror or exc}") from exc
        addresses = [(int(r["family"]), (r["host"], r["port"])) for r in results]
        if len(self._dns) > 10_000:
            self._dns.clear()
        self._dns[(host, port)] = (loop.time() + _DNS_TTL_S, addresses)
        return addresses

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _serialize(method: str, target: Target, headers: Mapping[str, str], body: bytes | memoryview | None) -> bytes:
    """The request line, headers and body as one buffer (one transport write)."""
    parts = [f"{method} {target.path} HTTP/1.1\r\n", ""]
    host = target.host_header
    seen: set[str] = set()
    for name, value in headers.items():
        low = name.lower()
        if low in _FRAMING:
            if low == "host":
                host = value
            continue  # the body's framing is ours
        seen.add(low)
        parts.append(f"{name}: {value}\r\n")
    parts[1] = f"Host: {host}\r\n"
    if "accept" not in seen:
        parts.append("Accept: */*\r\n")
    if "accept-encoding" not in seen:
        parts.append("Accept-Encoding: gzip, deflate\r\n")
    if body is not None:
        size = body.nbytes if isinstance(body, memoryview) else len(body)
        parts.append(f"Content-Length: {size}\r\n")
        if "content-type" not in seen:
            parts.append("Content-Type: application/octet-stream\r\n")
    elif method not in ("GET", "HEAD"):
        parts.append("Content-Length: 0\r\n")
    parts.append("\r\n")
    head = "".join(parts)
    if head.count("\n") != len(parts) or head.count("\r") != len(parts):
        raise UpstreamConnectError(f"request to {target.text} not sent: a header contains a line break")
    data = head.encode("utf-8")
    return data + body if body is not None else data
