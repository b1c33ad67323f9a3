"""Which provider and proxy addresses the gateway refuses to talk to: link-local and cloud metadata endpoints.

A provider base URL (or a proxy URL) is user-supplied configuration; pointing it at a cloud metadata service
(``http://169.254.169.254/...``) would turn the gateway into a way to read the host's cloud credentials. Refused:

- schemes other than ``http`` and ``https``;
- link-local addresses: ``169.254.0.0/16`` and ``fe80::/10`` (every cloud's metadata address lives there);
- the metadata addresses outside those ranges: ``fd00:ec2::254`` (AWS over IPv6), ``100.100.100.200`` (Alibaba);
- the metadata host names ``metadata.google.internal`` and ``metadata.goog`` (with or without a trailing dot);
- each of those addresses written as IPv4-mapped (``::ffff:169.254.169.254``) or IPv4-compatible IPv6, through a
  NAT64 prefix (the well-known ``64:ff9b::/96`` and the local-use ``64:ff9b:1::/48``, RFC 6052 / 8215), as 6to4
  (``2002:a9fe:a9fe::``) or Teredo (``2001::/32``, whose server and client fields both carry IPv4), and IPv4 in
  the legacy forms the C resolver still accepts (``2852039166``, ``0xa9fea9fe``, ``169.254.43518``).

Loopback and private ranges stay allowed: Ollama on localhost and in-cluster services are ordinary providers.
Every check takes ``allow`` (the operator's ``ALLOW_LINK_LOCAL_PROVIDERS`` switch), which turns the guard off.

A host name is only checked by name here; what it resolves to is checked at connect time by the executor's
resolver (:func:`refused_address` on every resolved address), so a DNS name pointing at a metadata address is
refused too. Pure: no I/O, no DNS.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["METADATA_HOSTS", "refused_address", "refused_host", "refused_url"]

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})
_METADATA_IPS = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_SCHEMES = frozenset({"http", "https"})
_HINT = "set ALLOW_LINK_LOCAL_PROVIDERS=true to allow it"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 one carries, by which a translator or relay on the path may reach them:
    IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64 (the last 32 bits under the well-known
    /96; the local-use /48 is checked at every RFC 6052 prefix length a network may have chosen within it), 6to4
    and both of Teredo's."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    packed = ip.packed
    if packed[:12] == bytes(12) and packed[12:] not in (bytes(4), b"\x00\x00\x00\x01"):  # not :: nor ::1
        return [ipaddress.IPv4Address(packed[12:])]
    if ip in _NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(packed[12:])]
    if ip in _NAT64_LOCAL:
        # RFC 6052 2.2: prefix lengths 48, 56, 64 or 96, the u octet (bits 64-71) always skipped
        spread = packed[:8] + packed[9:]
        return [ipaddress.IPv4Address(spread[n : n + 4]) for n in (6, 7, 8)] + [ipaddress.IPv4Address(packed[12:])]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def refused_address(address: str | IPAddress, *, allow: bool = False) -> str | None:
    """Why ``address`` (an IP literal; IPv6 may carry a ``%zone``) is refused, or None when it may be used.
    A string that is not an IP address is not refused here (see :func:`refused_host`)."""
    if allow:
        return None
    if isinstance(address, str):
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
    else:
        ip = address
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += _embedded_v4(ip)
    for candidate in candidates:
        if candidate in _METADATA_IPS:
            return f"{address} is a cloud metadata address; {_HINT}"
        if any(candidate in net for net in _LINK_LOCAL if net.version == candidate.version):
            return f"{address} is a link-local address; {_HINT}"
    return None


def _legacy_v4(host: str) -> ipaddress.IPv4Address | None:
    """``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376`` and other forms ``inet_aton`` reads as IPv4."""
    if not host or not all(c in "0123456789abcdefx." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refused_host(host: str, *, allow: bool = False) -> str | None:
    """Why the host part of a URL (a name or an IP literal, brackets optional) is refused, or None."""
    if allow:
        return None
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in METADATA_HOSTS:
        return f"{name} is a cloud metadata host; {_HINT}"
    reason = refused_address(name)
    if reason is None and (legacy := _legacy_v4(name)) is not None:
        reason = refused_address(legacy)
        if reason is not None:
            reason = f"{host} ({legacy}) " + reason.split(" ", 1)[1]
    return reason


def refused_url(url: str, *, allow: bool = False) -> str | None:
    """Why ``url`` may not be used as a provider or proxy address, or None. A non-http(s) scheme and a URL
    without a host are refused even when ``allow`` is set (they are never reachable over HTTP)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        return f"{url!r} is not a valid URL: {exc}"
    if parts.scheme.lower() not in _SCHEMES:
        return f"only http:// and https:// URLs are allowed, not {parts.scheme or 'a URL without a scheme'}"
    if not host:
        return f"{url!r} has no host"
    return refused_host(host, allow=allow)
