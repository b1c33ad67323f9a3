"""The upstream HTTP seam: the one place that knows which HTTP client talks to providers.

Direct requests go over our own pooled HTTP/1.1 client on asyncio protocols and httptools (:mod:`._h1`): aiohttp
cost ~80-90 µs of CPU per request where such a client costs under 30 µs (bench/PROFILE.md). Requests through an
outbound proxy go over aiohttp (chosen by measurement earlier, DESIGN.md: ~7,700 req/s where httpx reached
~3,000), which also remains the transport of every request with ``UPSTREAM_CLIENT=aiohttp``. Callers see only
:class:`Upstream`, :class:`UpstreamResponse` and the errors, so the choice can change here alone.

Per provider pool: a connection pool, a bounded concurrency queue that fails fast (:class:`QueueLimits`,
:class:`UpstreamBusy`), and the link-local / cloud metadata guard on every address (:class:`UpstreamBlocked`).
"""

from omniroute_executor.upstream._client import Upstream
from omniroute_executor.upstream._errors import (
    UpstreamBlocked,
    UpstreamBusy,
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeout,
)
from omniroute_executor.upstream._gate import QueueLimits
from omniroute_executor.upstream._guard import GuardedResolver
from omniroute_executor.upstream._response import UpstreamResponse

__all__ = [
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
