"""A provider's response as the callers see it: status, headers, the body read whole or as network chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp

from omniroute_executor.upstream._errors import UpstreamError, UpstreamTimeout

__all__ = ["UpstreamResponse"]


class UpstreamResponse:
    """Holds the pool's concurrency slot until :meth:`close` (which every caller runs in a ``finally``), whatever
    the ending: body read, error, cancellation, stream abandoned early."""

    __slots__ = ("_release", "_resp", "headers", "status")

    def __init__(
        self, status: int, headers: Mapping[str, str], resp: aiohttp.ClientResponse, release: Callable[[], None]
    ) -> None:
        self.status = status
        self.headers = headers
        self._resp = resp
        self._release: Callable[[], None] | None = release

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
        """Release the connection and the concurrency slot (idempotent); an unfinished body closes the
        connection, which cancels the upstream request."""
        self._resp.close()
        release, self._release = self._release, None
        if release is not None:
            release()

    def __del__(self) -> None:
        # a safety net only: a response dropped without close() must not hold its slot forever
        release, self._release = self._release, None
        if release is not None:
            release()
