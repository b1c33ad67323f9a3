"""Outbound proxy settings (``settings.proxy``, written by ``/api/settings/proxy``) and the choice per request.

Stored document (what the dashboard writes and the config snapshot carries)::

    {"enabled": bool, "url": "http://host:port", "username": str, "passwordEnc": "<Cipher token>",
     "noProxy": ["localhost", "127.0.0.1", "*.internal", "10.0.0.0/8", ...],
     "providers": {"<provider id>": {"url", "username", "passwordEnc"} | {"enabled": false}}}

The passwords are encrypted with the credential cipher, bound (``aad``) to :func:`password_aad` of their place, so
a token copied to another provider fails to decrypt. :meth:`ProxyConfig.proxy_for` picks the proxy of one request:

1. a host matching ``noProxy`` goes direct: ``*`` matches every host; ``example.com`` that host only;
   ``.example.com`` and ``*.example.com`` the domain and every subdomain; ``10.0.0.0/8`` (CIDR) or an IP
   literal the addresses it covers (only IP-literal hosts: the choice is made before any DNS lookup);
2. else the provider's own entry: ``{"enabled": false}`` goes direct, a ``url`` uses that proxy;
3. else the global proxy when ``enabled`` and a ``url`` is set; else direct.

Only ``http://`` and ``https://`` proxies exist here (aiohttp speaks those; HTTPS targets tunnel with CONNECT).
Pure apart from the decryption callback given to :meth:`ProxyConfig.parse`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["PROXY_KEY", "NoProxy", "ProxyConfig", "password_aad", "with_credentials"]

PROXY_KEY = "proxy"

Decrypt = Callable[[str, str], str]  # (token, aad) → plaintext; raises ValueError


def password_aad(provider_id: str = "") -> str:
    """The ``aad`` a proxy password is encrypted with: the global one, or one provider's."""
    return f"proxy:{provider_id}" if provider_id else "proxy"


def with_credentials(url: str, username: str, password: str) -> str:
    """``url`` with ``username:password@`` in its authority (percent-encoded); unchanged without either. A password
    alone is sent with an empty user name (``:password@``, Basic ``:password``), as curl's ``-U :password`` does:
    some proxies take a token as the password."""
    if not username and not password:
        return url
    parts = urlsplit(url)
    userinfo = quote(username, safe="") + (":" + quote(password, safe="") if password else "")
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{userinfo}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class NoProxy:
    """The parsed ``noProxy`` list."""

    everything: bool = False
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # ".example.com"
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: object) -> NoProxy:
        """Entries that are not strings or do not parse are skipped (the dashboard validates them on write)."""
        everything, hosts, suffixes, networks = False, set(), [], []
        for raw in entries if isinstance(entries, list | tuple) else ():
            if not isinstance(raw, str) or not raw.strip():
                continue
            entry = raw.strip().lower().rstrip(".")
            if entry == "*":
                everything = True
            elif entry.startswith(("*.", ".")):
                suffixes.append("." + entry.lstrip("*."))
            elif "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    continue
            else:
                hosts.add(entry.strip("[]"))
        return cls(everything, frozenset(hosts), tuple(suffixes), tuple(networks))

    def matches(self, host: str) -> bool:
        host = host.strip("[]").lower().rstrip(".")
        if self.everything or host in self.hosts:
            return True
        if any(host.endswith(s) or host == s[1:] for s in self.suffixes):
            return True
        if self.networks:
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                return False
            return any(ip in net for net in self.networks if net.version == ip.version)
        return False


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The outbound proxy choice. ``default`` and the values of ``providers`` are proxy URLs with credentials
    already in them; a provider mapped to None goes direct."""

    default: str | None = None
    no_proxy: NoProxy = field(default_factory=NoProxy)
    providers: Mapping[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, doc: object, decrypt: Decrypt | None) -> ProxyConfig:
        """The config of a stored document (None or malformed: no proxy). A password that cannot be decrypted
        (no ``decrypt``, wrong key) leaves that proxy without credentials: the proxy then refuses with 407,
        which names the problem, rather than every request going direct behind the operator's back."""
        if not isinstance(doc, Mapping):
            return cls()
        default = _proxy_url(doc, "", decrypt) if doc.get("enabled") is True else None
        providers: dict[str, str | None] = {}
        raw_providers = doc.get("providers")
        for pid, entry in raw_providers.items() if isinstance(raw_providers, Mapping) else ():
            if not isinstance(entry, Mapping):
                continue
            if entry.get("enabled") is False:
                providers[str(pid)] = None
            elif (url := _proxy_url(entry, str(pid), decrypt)) is not None:
                providers[str(pid)] = url
        return cls(default, NoProxy.parse(doc.get("noProxy")), providers)

    def proxy_for(self, provider_id: str, url: str) -> str | None:
        """The proxy URL for a request of ``provider_id`` to ``url``, or None to connect directly."""
        if self.default is None and not self.providers:
            return None
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        if self.no_proxy.matches(host):
            return None
        if provider_id in self.providers:
            return self.providers[provider_id]
        return self.default


def _proxy_url(entry: Mapping[str, Any], provider_id: str, decrypt: Decrypt | None) -> str | None:
    url = entry.get("url")
    if not isinstance(url, str) or not url:
        return None
    username = entry.get("username") if isinstance(entry.get("username"), str) else ""
    token = entry.get("passwordEnc")
    password = ""
    if isinstance(token, str) and token and decrypt is not None:
        try:
            password = decrypt(token, password_aad(provider_id))
        except ValueError:
            password = ""
    return with_credentials(url, str(username or ""), password)
