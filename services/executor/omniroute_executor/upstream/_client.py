"""The pooled clients, behind each provider pool's concurrency gate and the address guard: our HTTP/1.1 client
(:mod:`._h1`) for direct requests, one aiohttp session per pool for requests through an outbound proxy (and for
all requests with ``client="aiohttp"``, the ``UPSTREAM_CLIENT`` switch, kept to A/B-measure and to fall back).

Proxied requests stay on aiohttp because a proxy is a protocol of its own (CONNECT tunnels with TLS inside,
proxy credentials, 407 answers, absolute-URI requests for http:// targets) that our client does not speak; they
are rare and off the hot path, and aiohttp's handling of them is tested against a real proxy."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Literal
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp.resolver import DefaultResolver
from prometheus_client import CollectorRegistry, Counter, Gauge
from yarl import URL

from omniroute_executor.upstream._errors import UpstreamBlocked, UpstreamConnectError, UpstreamTimeout
from omniroute_executor.upstream._gate import Gate, QueueLimits
from omniroute_executor.upstream._guard import GuardedResolver, HostCheck, RefusedAddress
from omniroute_executor.upstream._h1 import H1Client
from omniroute_executor.upstream._response import AiohttpBody, UpstreamResponse

__all__ = ["Upstream"]

# the (scheme, host, port) of the request being sent, for the guard middleware's same-origin rule on redirects
_ORIGIN: ContextVar[tuple[str, str | None, int | None] | None] = ContextVar("upstream_origin", default=None)


class Upstream:
    """Pooled HTTP clients, one connection pool per provider, with explicit limits and timeouts.

    ``limits`` is the default concurrency queue of every pool (a call may pass its own, from the live config).
    ``allow_link_local`` turns the address guard off (``ALLOW_LINK_LOCAL_PROVIDERS``). ``resolver`` is the DNS
    resolver under the guard (None: aiohttp's default; tests map names to chosen addresses with it).
    ``registry`` receives the per-pool gauges ``omniroute_upstream_in_flight`` / ``omniroute_upstream_queued``
    and the counter ``omniroute_upstream_refused_total``. ``tls`` replaces the default certificate checks (a
    private CA; tests). ``client`` is the transport of direct requests: ``"h1"`` ours, ``"aiohttp"`` the fallback.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        limits: QueueLimits | None = None,
        allow_link_local: bool = False,
        resolver: aiohttp.abc.AbstractResolver | None = None,
        registry: CollectorRegistry | None = None,
        tls: ssl.SSLContext | None = None,
        client: Literal["h1", "aiohttp"] = "h1",
    ) -> None:
        self._max = max_connections
        self._connect_timeout = connect_timeout_s
        self._read_timeout = read_timeout_s
        self._use_h1 = client == "h1"
        self._h1: H1Client | None = None
        self._check = HostCheck()
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_read=read_timeout_s)
        self._limits = limits or QueueLimits(max_concurrent=max_connections)
        self._allow = allow_link_local
        self._resolver = resolver
        self._tls: ssl.SSLContext | bool = tls if tls is not None else True
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._gates: dict[str, Gate] = {}
        registry = registry or CollectorRegistry()
        self._in_flight = Gauge(
            "omniroute_upstream_in_flight", "Provider requests in flight", ["provider"], registry=registry
        )
        self._queued = Gauge(
            "omniroute_upstream_queued", "Provider requests waiting for a slot", ["provider"], registry=registry
        )
        self._refused = Counter(
            "omniroute_upstream_refused",
            "Provider requests refused at once because the concurrency queue was full",
            ["provider"],
            registry=registry,
        )

    @property
    def default_limits(self) -> QueueLimits:
        """The concurrency queue of a pool whose call gives no limits of its own."""
        return self._limits

    def gate(self, pool: str) -> Gate:
        """The pool's concurrency gate (created on first use)."""
        gate = self._gates.get(pool)
        if gate is None:
            gate = self._gates[pool] = Gate(pool)
            self._in_flight.labels(pool).set_function(lambda: gate.in_flight)
            self._queued.labels(pool).set_function(lambda: gate.queued)
        return gate

    def _session(self, pool: str) -> aiohttp.ClientSession:
        session = self._sessions.get(pool)
        if session is None:
            resolver = None if self._allow else GuardedResolver(self._resolver)
            connector = aiohttp.TCPConnector(
                limit=self._max,
                limit_per_host=self._max,
                ttl_dns_cache=300,
                resolver=resolver or self._resolver,
                ssl=self._tls,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                middlewares=(self._guard,),
            )
            self._sessions[pool] = session
        return session

    async def _guard(self, req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        """Session middleware, which aiohttp runs for every request it sends, each redirect hop included, on the
        host it is about to connect to: the guard for IP-literal and metadata hosts (they never reach the
        resolver), then the same-origin rule for redirects. A provider's credentials travel in headers aiohttp
        does not know (``x-api-key``, ``api-key``, ``x-goog-api-key``: it drops only ``Authorization`` on a
        cross-origin hop), so a redirect to another origin is refused rather than followed with them."""
        if not self._allow:
            self._check.check(req.url.host or "")
            if req.proxy is not None:
                self._check.check(req.proxy.host or "")
        origin = _ORIGIN.get()
        if origin is not None and (req.url.scheme, req.url.host, req.url.port) != origin:
            raise UpstreamBlocked(
                f"refused to follow a redirect to another origin ({req.url.scheme}://{req.url.host}:{req.url.port}):"
                " it would carry the provider credentials"
            )
        return await handler(req)

    def _h1_client(self) -> H1Client:
        if self._h1 is None:
            self._h1 = H1Client(
                max_connections=self._max,
                connect_timeout_s=self._connect_timeout,
                read_timeout_s=self._read_timeout,
                tls=self._tls if isinstance(self._tls, ssl.SSLContext) else None,
                resolver=(self._resolver or DefaultResolver()) if self._allow else GuardedResolver(self._resolver),
                check=None if self._allow else self._check,
            )
        return self._h1

    async def _request(
        self,
        method: str,
        pool: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | memoryview | None,
        proxy: str | None,
        limits: QueueLimits | None,
    ) -> UpstreamResponse:
        gate = self.gate(pool)
        try:
            await gate.acquire(limits or self._limits)
        except Exception:
            self._refused.labels(pool).inc()
            raise
        if proxy is None and self._use_h1:
            try:
                status, resp_headers, body_ = await self._h1_client().request(pool, method, url, headers, body)
            except BaseException:
                gate.release()
                raise
            return UpstreamResponse(status, resp_headers, body_, gate.release)
        target = URL(url)
        token = _ORIGIN.set((target.scheme, target.host, target.port))
        try:
            resp = await self._session(pool).request(method, target, data=body, headers=dict(headers), proxy=proxy)
        except BaseException as exc:
            gate.release()
            if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
                raise UpstreamTimeout(f"no response from {url}") from exc
            if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, RefusedAddress):
                raise UpstreamBlocked(f"refused to connect to {url}: {exc.os_error}") from exc
            if isinstance(exc, aiohttp.ClientConnectorError):
                why = _redact(str(exc.os_error or exc), proxy)
                raise UpstreamConnectError(f"cannot connect to {url}: {why}") from exc
            if isinstance(exc, aiohttp.ClientError):
                raise UpstreamConnectError(f"request to {url} failed: {_redact(str(exc), proxy)}") from exc
            raise
        finally:
            _ORIGIN.reset(token)
        return UpstreamResponse(resp.status, resp.headers, AiohttpBody(resp), gate.release)

    async def post(
        self,
        pool: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | memoryview,
        *,
        proxy: str | None = None,
        limits: QueueLimits | None = None,
    ) -> UpstreamResponse:
        """Send a POST and return once the status line and headers arrived. The caller must ``close()``.

        ``proxy`` is an outbound HTTP proxy URL (``http://user:pass@host:port``); HTTPS targets tunnel through it
        with CONNECT. ``limits`` overrides the pool's default concurrency queue for this call.
        Raises :class:`UpstreamBusy` (queue full, nothing sent), :class:`UpstreamBlocked` (guarded address,
        nothing sent), :class:`UpstreamConnectError`, :class:`UpstreamTimeout`.
        """
        return await self._request("POST", pool, url, headers, body, proxy, limits)

    async def get(
        self,
        pool: str,
        url: str,
        headers: Mapping[str, str],
        *,
        proxy: str | None = None,
        limits: QueueLimits | None = None,
    ) -> UpstreamResponse:
        """Send a GET (a poll of a provider's job, a model list, a proxy test); like :meth:`post` otherwise."""
        return await self._request("GET", pool, url, headers, None, proxy, limits)

    async def close(self) -> None:
        if self._h1 is not None:
            self._h1.close()
            self._h1 = None
        await asyncio.gather(*(s.close() for s in self._sessions.values()))
        self._sessions.clear()


def _redact(message: str, proxy: str | None) -> str:
    """``message`` without the proxy's password: aiohttp names the proxy URL it was given in its errors (a 407 to
    CONNECT does), and these messages reach clients, usage events and the dashboard."""
    if not proxy or "@" not in proxy:
        return message
    password = urlsplit(proxy).password or ""
    for secret in {password, unquote(password)} - {""}:
        message = message.replace(f":{secret}@", ":***@")
    return message
