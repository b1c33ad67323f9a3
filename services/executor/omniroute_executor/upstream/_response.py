"""A provider's response as the callers see it: status, headers, the body read whole or as network chunks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

import aiohttp

from omniroute_executor.upstream._errors import UpstreamError, UpstreamTimeout

__all__ = ["AiohttpBody", "Body", "UpstreamResponse"]


class Body(Protocol):
    """The body as a transport delivers it; its errors are already :class:`UpstreamError` subclasses."""

    async def read(self) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class UpstreamResponse:
    """Holds the pool's concurrency slot until :meth:`close` (which every caller runs in a ``finally``), whatever
    the ending: body read, error, cancellation, stream abandoned early. ``headers`` is case-insensitive and keeps
    repeated headers (``getall``)."""

    __slots__ = ("_body", "_release", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: Body, release: Callable[[], None]) -> None:
        self.status = status
        self.headers = headers
        self._body = body
        self._release: Callable[[], None] | None = release

    async def read(self) -> bytes:
        return await self._body.read()

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Bytes as the network delivers them (never re-chunked), decoded if the provider compressed them."""
        return self._body.iter_chunks()

    def close(self) -> None:
        """Release the connection and the concurrency slot (idempotent); an unfinished body closes the
        connection, which cancels the upstream request."""
        self._body.close()
        release, self._release = self._release, None
        if release is not None:
            release()

    def __del__(self) -> None:
        # a safety net only: a response dropped without close() must not hold its slot or its connection forever
        release, self._release = self._release, None
        if release is not None:
            release()
            if not isinstance(self._body, AiohttpBody):  # aiohttp's response has its own safety net
                with contextlib.suppress(Exception):  # the loop may be closed already
                    self._body.close()


class AiohttpBody:
    """An aiohttp response's body, its errors mapped to ours."""

    __slots__ = ("_resp",)

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout("provider stopped sending") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"provider broke off the response: {exc}") from exc

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._resp.content.iter_any():
                yield data
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout("provider stopped sending") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"provider broke off the stream: {exc}") from exc

    def close(self) -> None:
        self._resp.close()
