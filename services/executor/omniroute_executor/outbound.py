"""The network policy of one request: which outbound proxy each provider call uses and the concurrency limits of
each provider's pool, read from the config snapshot.

- proxies: ``settings.proxy`` (:mod:`omniroute_core.proxies`; passwords decrypted with the credential cipher);
- limits: ``settings.routing.providers.<id>`` ``maxConcurrent``, ``maxQueued``, ``queueTimeoutMs`` over the
  executor's defaults (``UPSTREAM_MAX_CONCURRENT``, ``UPSTREAM_MAX_QUEUED``, ``UPSTREAM_QUEUE_TIMEOUT_S``). They
  belong to the provider's pool, which every request shares, so a combo's ``config`` does not override them.

A policy is built once per config snapshot (decrypting passwords is not done per request).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from omniroute_core.proxies import PROXY_KEY, ProxyConfig
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_executor.upstream import QueueLimits

__all__ = ["NetPolicies", "NetPolicy"]

Decrypt = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class NetPolicy:
    proxies: ProxyConfig = field(default_factory=ProxyConfig)
    limits: Mapping[str, QueueLimits] = field(default_factory=dict)  # providers with their own limits

    def proxy(self, provider_id: str, url: str) -> str | None:
        return self.proxies.proxy_for(provider_id, url)

    def limits_for(self, provider_id: str) -> QueueLimits | None:
        """The provider's own limits, or None for the upstream's defaults."""
        return self.limits.get(provider_id)


def limits_from(routing: object, defaults: QueueLimits) -> dict[str, QueueLimits]:
    """Per-provider limits of ``settings.routing``; malformed values are ignored (the dashboard validates)."""
    providers = routing.get("providers") if isinstance(routing, Mapping) else None
    out: dict[str, QueueLimits] = {}
    for pid, raw in providers.items() if isinstance(providers, Mapping) else ():
        if not isinstance(raw, Mapping):
            continue
        changes: dict[str, Any] = {}
        if _count(raw.get("maxConcurrent"), 1):
            changes["max_concurrent"] = raw["maxConcurrent"]
        if _count(raw.get("maxQueued"), 0):
            changes["max_queued"] = raw["maxQueued"]
        if _count(raw.get("queueTimeoutMs"), 0):
            changes["queue_timeout_s"] = raw["queueTimeoutMs"] / 1000
        if changes:
            out[str(pid)] = replace(defaults, **changes)
    return out


def _count(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


class NetPolicies:
    """Builds (and keeps, for the current config version) the :class:`NetPolicy` of a snapshot. ``decrypt``
    reads proxy passwords (None: proxies are used without them)."""

    def __init__(self, decrypt: Decrypt | None, defaults: QueueLimits) -> None:
        self._decrypt = decrypt
        self._defaults = defaults
        self._source: tuple[object, object] = (None, None)
        self._policy = NetPolicy()

    def for_snapshot(self, snapshot: ConfigSnapshot) -> NetPolicy:
        # the documents themselves are the cache key (held, so their identity cannot be reused)
        proxy, routing = snapshot.settings.get(PROXY_KEY), snapshot.settings.get("routing")
        if proxy is not self._source[0] or routing is not self._source[1]:
            self._policy = NetPolicy(ProxyConfig.parse(proxy, self._decrypt), limits_from(routing, self._defaults))
            self._source = (proxy, routing)
        return self._policy
