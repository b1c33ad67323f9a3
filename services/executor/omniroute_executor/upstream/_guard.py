"""The connect-time half of the link-local / cloud metadata guard: a resolver that checks every address a host
name resolves to, so a DNS name pointing at ``169.254.169.254`` is refused before any packet is sent.

Neither client calls the resolver for IP-literal hosts; :class:`HostCheck` refuses those (and the metadata host
names) before every request, redirect hops included: aiohttp's session middleware runs it for the target and the
proxy, our HTTP/1.1 client (:mod:`._h1`) for the target and every redirect. Both clients resolve through the same
:class:`Resolver` interface (aiohttp's), so a test's resolver serves either.
"""

from __future__ import annotations

import socket
from typing import Protocol

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from omniroute_core.netguard import refused_address, refused_host
from omniroute_executor.upstream._errors import UpstreamBlocked

__all__ = ["GuardedResolver", "HostCheck", "RefusedAddress", "Resolver"]


class Resolver(Protocol):
    """What both clients need of a resolver: aiohttp's :class:`~aiohttp.abc.AbstractResolver` satisfies it."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]: ...

    async def close(self) -> None: ...


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


class HostCheck:
    """:func:`~omniroute_core.netguard.refused_host` with its answers cached (bounded): raises
    :class:`~omniroute_executor.upstream.UpstreamBlocked` for an IP-literal or metadata host that is refused."""

    def __init__(self) -> None:
        self._reasons: dict[str, str | None] = {}  # host → reason (None: allowed)

    def check(self, host: str) -> None:
        reasons = self._reasons
        if host not in reasons:
            if len(reasons) > 10_000:
                reasons.clear()
            reasons[host] = refused_host(host)
        reason = reasons[host]
        if reason is not None:
            raise UpstreamBlocked(f"refused to connect to {host}: {reason}")
