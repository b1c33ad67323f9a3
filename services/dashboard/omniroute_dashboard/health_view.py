"""The data plane's health records (breakers, cooldowns, lockouts, rate-limit headers), read back for reports.

Pure: the caller reads Redis (``HGETALL`` of the epoch's health hash, ``MGET`` of the rate-limit keys) and passes
the decoded records and the time in. States of a connection, most blocking first:

- ``disabled``: the connection is switched off (``isActive`` false);
- ``provider_breaker_open``: the provider's breaker is open (every connection of it is skipped);
- ``breaker_open``: the connection's breaker is open;
- ``cooling_down``: a 429 (or a ``Retry-After``) cools it down;
- ``half_open``: a breaker's wait is over: the next request probes it (one at a time);
- ``available``.

A model on a connection can additionally be ``locked_out`` (the provider refused it with 401, 403 or 404).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from omniroute_core.health import Health, connection_key, lockout_key, provider_key
from omniroute_core.snapshot import ProviderConnection

__all__ = ["HealthView", "iso", "rate_limit_view"]

_BLOCKING = ("disabled", "provider_breaker_open", "breaker_open", "cooling_down")


def iso(ms: int | None) -> str | None:
    return None if not ms else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _breaker(health: Health, now_ms: int) -> dict[str, Any]:
    if health.open_until_ms > now_ms:
        state = "open"
    elif health.open_until_ms:
        state = "half-open"
    else:
        state = "closed"
    return {"state": state, "failures": health.failures, "openUntil": iso(health.open_until_ms)}


@dataclass(frozen=True, slots=True)
class HealthView:
    records: Mapping[str, Health]
    now_ms: int

    def get(self, key: str) -> Health:
        return self.records.get(key, Health())

    def provider(self, provider_id: str) -> dict[str, Any]:
        return _breaker(self.get(provider_key(provider_id)), self.now_ms)

    def connection_state(self, conn: ProviderConnection) -> tuple[str, int]:
        """(state, until ms or 0) of a connection, ignoring lockouts."""
        now = self.now_ms
        mine, provider = self.get(connection_key(conn.id)), self.get(provider_key(conn.provider))
        if not conn.is_active:
            return "disabled", 0
        if provider.open_until_ms > now:
            return "provider_breaker_open", provider.open_until_ms
        if mine.open_until_ms > now:
            return "breaker_open", mine.open_until_ms
        if mine.cooldown_until_ms > now:
            return "cooling_down", mine.cooldown_until_ms
        if mine.half_open(now) or provider.half_open(now):
            return "half_open", 0
        return "available", 0

    def lockout(self, conn: ProviderConnection, model: str) -> Health | None:
        """The live lockout of ``model`` on ``conn`` (None when it may be tried)."""
        record = self.records.get(lockout_key(conn, model))
        return record if record is not None and record.locked_until_ms > self.now_ms else None

    def lockouts(self, conn: ProviderConnection) -> list[dict[str, Any]]:
        """Every live lockout of ``conn`` under its current credentials."""
        prefix = lockout_key(conn, "")
        return [
            {"model": key[len(prefix) :], "status": h.lock_status, "until": iso(h.locked_until_ms)}
            for key, h in sorted(self.records.items())
            if key.startswith(prefix) and h.locked_until_ms > self.now_ms
        ]

    def connection(self, conn: ProviderConnection) -> dict[str, Any]:
        state, until = self.connection_state(conn)
        mine = self.get(connection_key(conn.id))
        cooling = mine.cooldown_until_ms > self.now_ms
        return {
            "id": conn.id,
            "name": conn.name,
            "active": conn.is_active,
            "priority": conn.priority,
            "state": state,
            "until": iso(until),
            "breaker": _breaker(mine, self.now_ms),
            "cooldown": {
                "until": iso(mine.cooldown_until_ms) if cooling else None,
                "consecutive429": mine.backoff_level,
            },
            "lockouts": self.lockouts(conn),
        }

    def target(self, conn: ProviderConnection, model: str) -> tuple[str, int, str]:
        """(state, until ms, reason) of sending ``model`` to ``conn`` now; the reason is "" when it would go."""
        state, until = self.connection_state(conn)
        if state == "disabled":
            return state, 0, "the connection is disabled"
        if state in _BLOCKING:
            what = {
                "provider_breaker_open": f"the circuit breaker of provider {conn.provider!r} is open",
                "breaker_open": "the connection's circuit breaker is open",
                "cooling_down": "the connection is cooling down after a rate limit (429)",
            }[state]
            return state, until, f"{what} until {iso(until)}"
        lock = self.lockout(conn, model)
        if lock is not None:
            until_text = iso(lock.locked_until_ms)
            reason = f"locked out: the provider answered HTTP {lock.lock_status} for this model, until {until_text}"
            return "locked_out", lock.locked_until_ms, reason
        return state, 0, ""


def rate_limit_view(
    conn: ProviderConnection, record: Mapping[str, Any] | None, health: Health, now_ms: int
) -> dict[str, Any]:
    """One connection's entry of ``/api/rate-limits``: the newest headers the executor saw plus the 429 cooldown."""
    windows: Mapping[str, Any] = (record.get("windows") or {}) if record else {}
    out_windows = {
        name: {"limit": w.get("limit"), "remaining": w.get("remaining"), "resetAt": iso(w.get("resetAt"))}
        for name, w in windows.items()
        if isinstance(w, Mapping)
    }
    exhausted = any(
        w.get("remaining") == 0 and (w.get("resetAt") or 0) > now_ms for w in windows.values() if isinstance(w, Mapping)
    )
    cooling = health.cooldown_until_ms > now_ms
    state = "cooling_down" if cooling else "exhausted" if exhausted else "ok" if record else "unknown"
    return {
        "connectionId": conn.id,
        "provider": conn.provider,
        "name": conn.name,
        "isActive": conn.is_active,
        "state": state,
        "cooldownUntil": iso(health.cooldown_until_ms) if cooling else None,
        "consecutive429": health.backoff_level,
        "lastStatus": record.get("status") if record else None,
        "observedAt": iso(record.get("observedAt")) if record else None,
        "retryAfterMs": record.get("retryAfterMs") if record else None,
        **{name: out_windows.get(name) for name in ("requests", "tokens", "inputTokens", "outputTokens")},
    }
