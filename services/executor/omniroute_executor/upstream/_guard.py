"""The connect-time half of the link-local / cloud metadata guard: a resolver that checks every address a host
name resolves to, so a DNS name pointing at ``169.254.169.254`` is refused before any packet is sent.

aiohttp does not call the resolver for IP-literal hosts; :class:`~omniroute_executor.upstream.Upstream` checks
those (and the metadata host names) in a session middleware, which aiohttp runs before every request it sends
(redirect hops included), target and proxy alike.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from omniroute_core.netguard import refused_address, refused_host

__all__ = ["GuardedResolver", "RefusedAddress"]


class RefusedAddress(OSError):
    """Raised from the resolver (aiohttp wraps it in ``ClientConnectorDNSError``); the message says why."""


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` (the default resolver when None) and refuses the whole host when any of its
    addresses is link-local or a metadata address. Owns ``inner``: :meth:`close` closes it."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        reason = refused_host(host)
        if reason is not None:
            raise RefusedAddress(reason)
        results = await self._inner.resolve(host, port, family)
        for result in results:
            reason = refused_address(result["host"])
            if reason is not None:
                raise RefusedAddress(f"{host.rstrip('.')} resolves to {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()
