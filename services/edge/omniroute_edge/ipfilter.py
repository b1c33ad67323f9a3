"""The IP filter, in front of every route: plain ASGI middleware around the FastAPI app (``/api`` forwarding and
the rest), and :meth:`IpFilter.admit` called directly by the data-plane dispatcher.

Rules come from the snapshot setting ``ipFilter`` (``{"enabled", "allowlist", "blocklist"}``, addresses or CIDRs,
managed by the dashboard's ``/api/settings/ip-filter``): when enabled, an address in the blocklist is refused,
and so is one outside a non-empty allowlist. ``/health`` is exempt, so probes keep working under any rule.

The client's address is the TCP peer, unless the peer is a trusted proxy (``TRUSTED_PROXIES``, CIDRs): then it is
the rightmost ``X-Forwarded-For`` address that is not itself a trusted proxy. Everything left of it was written
by the client and cannot be believed. The address is left in ``scope["omniroute.client_ip"]`` for the relay.

A refusal is a 403 ``permission_error`` in the format of the route the request was for (the route table says
which), and in the OpenAI envelope everywhere else.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from omniroute.v1 import common_pb2
from omniroute_core.errors import hub_error
from omniroute_core.formats import HUB_FORMAT
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_edge.refusals import send_error
from omniroute_edge.routes import Route

__all__ = ["CLIENT_IP", "IpFilter", "IpRules", "client_address", "parse_networks"]

log = logging.getLogger(__name__)

CLIENT_IP = "omniroute.client_ip"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_EXEMPT = frozenset({"/health"})


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDRs (host bits allowed: ``10.0.0.1/8`` is ``10.0.0.0/8``). Raises ``ValueError``."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


@dataclass(frozen=True, slots=True)
class IpRules:
    enabled: bool = False
    allow: tuple[Network, ...] = ()
    block: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> IpRules:
        """From the snapshot's ``ipFilter`` setting; a malformed one (the dashboard validates) disables it."""
        raw = settings.get("ipFilter") if isinstance(settings, dict) else None
        if not isinstance(raw, dict) or not raw.get("enabled"):
            return cls()
        try:
            return cls(True, parse_networks(raw.get("allowlist") or ()), parse_networks(raw.get("blocklist") or ()))
        except (ValueError, TypeError, AttributeError):
            log.error("ignoring a malformed ipFilter setting")
            return cls()

    def refuses(self, address: str) -> bool:
        if not self.enabled:
            return False
        if _within(address, self.block):
            return True
        return bool(self.allow) and not _within(address, self.allow)


def client_address(peer: str, forwarded_for: str, trusted: tuple[Network, ...]) -> str:
    """The client's address given the TCP ``peer`` and its ``X-Forwarded-For`` header (see the module doc)."""
    if not trusted or not forwarded_for or not _within(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer


class IpFilter:
    """ASGI middleware. ``scope["state"]["edge"]`` (the lifespan's EdgeContext) supplies snapshot and errors."""

    def __init__(self, app: ASGIApp, *, trusted: tuple[Network, ...], routes: tuple[Route, ...]) -> None:
        self._app = app
        self._trusted = trusted
        self._formats = [(compile_path(r.path)[0], r.format) for r in routes]
        # rules parsed once per snapshot, not per request
        self._snapshot: ConfigSnapshot | None = None
        self._rules = IpRules()

    def _rules_for(self, snapshot: ConfigSnapshot) -> IpRules:
        if snapshot is not self._snapshot:
            self._rules = IpRules.from_settings(snapshot.settings)
            self._snapshot = snapshot
        return self._rules

    def _format_of(self, path: str) -> common_pb2.Format.ValueType:
        for pattern, fmt in self._formats:
            if _matches(pattern, path):
                return fmt
        return HUB_FORMAT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or await self.admit(scope, send):
            await self._app(scope, receive, send)

    async def admit(self, scope: Scope, send: Send) -> bool:
        """True when the request may go on (its client address is then in ``scope[CLIENT_IP]``); otherwise the
        403 has been sent. A plain call, so the data-plane dispatcher runs it without a middleware layer."""
        ctx = (scope.get("state") or {}).get("edge")
        if ctx is None:
            return True
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        address = peer
        if self._trusted:
            forwarded = ",".join(v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for")
            address = client_address(peer, forwarded, self._trusted)
        scope[CLIENT_IP] = address
        if scope["path"] in _EXEMPT or not self._rules_for(ctx.snapshot()).refuses(address):
            return True
        rid = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        error = hub_error(403, f"requests from {address} are not allowed by the IP filter", code="ip_not_allowed")
        await send_error(ctx.errors, self._format_of(scope["path"]), error, send, rid)
        return False


def _matches(pattern: re.Pattern[str], path: str) -> bool:
    return pattern.match(path) is not None
