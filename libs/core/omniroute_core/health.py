"""Breaker, cooldown and lockout records in Redis: their key names and their JSON format.

The executor writes them (``omniroute_executor.resilience``) and routes around what they block; the dashboard reads
the same keys for ``/api/models/availability`` and ``/api/rate-limits``. Both take the layout from here, since
services never import each other.

Layout: one hash ``omniroute:health:<epoch>`` per reset epoch (``settings.resilience.resetEpoch``; ``POST
/api/resilience/reset`` bumps it, so every replica starts clean). Its fields:

- ``conn:<connection id>``: the connection's breaker and 429 cooldown;
- ``prov:<provider id>``: the provider's breaker;
- ``lock:<connection id>:<credential fingerprint>:<model>``: a lockout of one model on one connection after the
  provider refused it outright (401, 403, 404). The fingerprint is a hash of the stored (encrypted) credential,
  so a lockout ends as soon as the operator replaces the key.

Each value is the JSON array of :meth:`Health.encode`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from omniroute_core import jsonx
from omniroute_core.snapshot import ProviderConnection

__all__ = [
    "HEALTH_PREFIX",
    "LOCKOUT_STATUSES",
    "Health",
    "connection_key",
    "decode_health",
    "health_hash",
    "lockout_key",
    "parse_lockout_key",
    "provider_key",
    "reset_epoch",
]

HEALTH_PREFIX = "omniroute:health"
# provider answers that lock a model out on one connection: the credentials are refused (401), the account may not
# use the model (403), or the provider does not have it (404). Retrying them elsewhere is the fallback's job;
# not retrying them on every request is the lockout's.
LOCKOUT_STATUSES = frozenset({401, 403, 404})


def health_hash(epoch: str, prefix: str = HEALTH_PREFIX) -> str:
    return f"{prefix}:{epoch}"


def reset_epoch(settings: Mapping[str, Any]) -> str:
    """The epoch of the published config (``settings.resilience.resetEpoch``; ``"0"`` when never reset)."""
    resilience = settings.get("resilience")
    epoch = resilience.get("resetEpoch", 0) if isinstance(resilience, Mapping) else 0
    return str(epoch)


def connection_key(connection_id: str) -> str:
    return f"conn:{connection_id}"


def provider_key(provider_id: str) -> str:
    return f"prov:{provider_id}"


def lockout_key(connection: ProviderConnection, model: str) -> str:
    return f"lock:{connection.id}:{_fingerprint(connection.api_key_enc)}:{model}"


@lru_cache(maxsize=4096)
def _fingerprint(api_key_enc: str) -> str:
    return hashlib.sha256(api_key_enc.encode()).hexdigest()[:12]


def parse_lockout_key(key: str) -> tuple[str, str, str] | None:
    """``(connection id, fingerprint, model)`` of a lockout field, or None for another kind of field."""
    kind, _, rest = key.partition(":")
    if kind != "lock":
        return None
    connection_id, _, rest = rest.partition(":")
    fingerprint, _, model = rest.partition(":")
    return (connection_id, fingerprint, model) if model else None


@dataclass(frozen=True, slots=True)
class Health:
    """One record. ``open_until_ms``: 0 closed, in the future open, in the past half-open (one probe).
    ``cooldown_until_ms`` / ``backoff_level``: the 429 cooldown and how many came in a row. ``locked_until_ms`` /
    ``lock_status``: a lockout and the status that caused it. Times are wall-clock milliseconds."""

    failures: int = 0
    open_until_ms: int = 0
    cooldown_until_ms: int = 0
    backoff_level: int = 0
    locked_until_ms: int = 0
    lock_status: int = 0

    @property
    def clean(self) -> bool:
        return self == _CLEAN

    def blocked_until(self, now_ms: int) -> int:
        """0 when a request may go (closed, or half-open: a probe), else when it may go again."""
        until = max(self.open_until_ms, self.cooldown_until_ms, self.locked_until_ms)
        return until if until > now_ms else 0

    def half_open(self, now_ms: int) -> bool:
        return 0 < self.open_until_ms <= now_ms

    def encode(self) -> list[int]:
        """Four numbers, or six with a lockout (a replica that knows only four reads a lockout as clean)."""
        base = [self.failures, self.open_until_ms, self.cooldown_until_ms, self.backoff_level]
        return [*base, self.locked_until_ms, self.lock_status] if self.locked_until_ms else base

    @classmethod
    def decode(cls, raw: Any) -> Health:
        if isinstance(raw, list) and len(raw) in (4, 6) and all(isinstance(v, int) for v in raw):
            return cls(*raw)
        return cls()


_CLEAN = Health()


def decode_health(value: bytes | str | None) -> Health:
    """A stored value (JSON text) as a record; anything unreadable is a clean record."""
    if not value:
        return Health()
    try:
        return Health.decode(jsonx.loads(value))
    except jsonx.JSONDecodeError:
        return Health()
