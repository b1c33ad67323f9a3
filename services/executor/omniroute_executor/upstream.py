"""The upstream HTTP seam: the one place that knows which HTTP client talks to providers.

aiohttp is the transport, chosen by measurement (DESIGN.md: a relay over aiohttp reached ~7,700 req/s on this
machine, over httpx with its aiohttp transport ~3,000, over plain httpx ~900). Callers see only
:class:`Upstream` and :class:`UpstreamResponse`, so the choice can change here alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

__all__ = ["Upstream", "UpstreamConnectError", "UpstreamError", "UpstreamResponse", "UpstreamTimeout"]


class UpstreamError(Exception):
    """The provider could not be reached or broke off the response."""


class UpstreamConnectError(UpstreamError):
    """Connection refused, reset or DNS failure before any response (→ 502)."""


class UpstreamTimeout(UpstreamError):
    """No connection or no bytes within the configured time (→ 504)."""


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    _resp: aiohttp.ClientResponse

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout("provider stopped sending") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"provider broke off the response: {exc}") from exc

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Bytes as the network delivers them (never re-chunked)."""
        try:
            async for data in self._resp.content.iter_any():
                yield data
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout("provider stopped sending") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"provider broke off the stream: {exc}") from exc

    def close(self) -> None:
        """Release the connection; an unfinished body closes it, which cancels the upstream request."""
        self._resp.close()


class Upstream:
    """Pooled HTTP clients, one connection pool per provider, with explicit limits and timeouts."""

    def __init__(self, *, max_connections: int, connect_timeout_s: float, read_timeout_s: float) -> None:
        self._max = max_connections
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_read=read_timeout_s)
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, pool: str) -> aiohttp.ClientSession:
        session = self._sessions.get(pool)
        if session is None:
            connector = aiohttp.TCPConnector(limit=self._max, limit_per_host=self._max, ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
            self._sessions[pool] = session
        return session

    async def post(
        self, pool: str, url: str, headers: Mapping[str, str], body: bytes | memoryview, *, proxy: str | None = None
    ) -> UpstreamResponse:
        """Send a POST and return once the status line and headers arrived. The caller must ``close()``.

        ``proxy`` is an outbound HTTP proxy URL (``http://user:pass@host:port``); HTTPS targets tunnel through it
        with CONNECT.
        """
        try:
            resp = await self._session(pool).post(url, data=body, headers=dict(headers), proxy=proxy)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(f"no response from {url}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(f"cannot connect to {url}: {exc.os_error or exc}") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(f"request to {url} failed: {exc}") from exc
        return UpstreamResponse(resp.status, resp.headers, resp)

    async def get(
        self, pool: str, url: str, headers: Mapping[str, str], *, proxy: str | None = None
    ) -> UpstreamResponse:
        """Send a GET (a poll of a provider's job, a model list); like :meth:`post` otherwise."""
        try:
            resp = await self._session(pool).get(url, headers=dict(headers), proxy=proxy)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(f"no response from {url}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(f"cannot connect to {url}: {exc.os_error or exc}") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(f"request to {url} failed: {exc}") from exc
        return UpstreamResponse(resp.status, resp.headers, resp)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._sessions.values()))
        self._sessions.clear()
