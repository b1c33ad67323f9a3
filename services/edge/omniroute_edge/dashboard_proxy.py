"""Forwarding of ``/api/*`` and ``/dashboard/*`` to the dashboard service (the control plane).

Bytes pass both ways unchanged (compressed bodies included); hop-by-hop headers are dropped and the client's
address is added as ``X-Forwarded-For`` so the dashboard can audit and filter by it.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from omniroute_core.errors import hub_error, hub_error_body

__all__ = ["DashboardProxy"]

_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class DashboardProxy:
    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_read=300),
            connector=aiohttp.TCPConnector(limit=200),
        )

    async def close(self) -> None:
        await self._session.close()

    async def forward(self, request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
        client = request.client.host if request.client else ""
        prior = request.headers.get("x-forwarded-for")
        headers.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
        headers.append(("X-Forwarded-Proto", request.url.scheme))
        url = self._base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            upstream = await self._session.request(
                request.method, url, headers=headers, data=await request.body(), allow_redirects=False
            )
        except aiohttp.ClientError:
            error = hub_error(503, "the dashboard service is unavailable; retry shortly", type_="service_unavailable")
            return Response(hub_error_body(error), status_code=503, media_type="application/json")
        out_headers: list[tuple[str, str]] = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP]

        async def body() -> Any:
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            finally:
                upstream.release()

        response = StreamingResponse(body(), status_code=upstream.status)
        response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
        return response
