"""The upstream HTTP seam: the one place that knows which HTTP client talks to providers.

aiohttp is the transport, chosen by measurement (DESIGN.md: a relay over aiohttp reached ~7,700 req/s on this
machine, over httpx with its aiohttp transport ~3,000, over plain httpx ~900). Callers see only
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
