"""Circuit breakers and cooldowns as pure state transitions of one :class:`Health` record per target.

A target is a connection (``conn:<id>``) or a provider (``prov:<id>``), each with its own :class:`Profile`.

- Breaker: ``failures`` counts consecutive failures (5xx, 408, timeouts, connection errors). At
  ``failure_threshold`` it opens for ``cooldown_ms`` (``open_until_ms``); once that passed it is half-open: one
  probe is admitted (see :meth:`HealthStore.admit`), and the probe's success closes it while its failure reopens
  it for another ``cooldown_ms``.
- Cooldown (connections): a 429 cools the connection until the provider's ``Retry-After`` / rate-limit reset,
  or else for ``base_backoff_ms * 2**(n-1)`` (capped at ``max_backoff_ms``) on the n-th 429 in a row. A 503 with
  ``Retry-After`` cools it for that long as well.
- Success resets everything.
- Lockout (a model on a connection, its own record): the provider refused the model outright (401, 403, 404), so
  it is not tried on that connection for ``lockout_ms`` (or until the connection's credentials change: see
  :mod:`omniroute_core.health` for the key).

The :class:`Health` record and its Redis layout are shared with the dashboard (:mod:`omniroute_core.health`).
Times are wall-clock milliseconds (shared by replicas through Redis), passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from omniroute_core.health import Health

__all__ = ["DEFAULT_PROFILES", "Health", "Profile", "after_failure", "locked_out", "profiles_from"]


@dataclass(frozen=True, slots=True)
class Profile:
    failure_threshold: int = 5
    cooldown_ms: int = 30_000
    base_backoff_ms: int = 1_000
    max_backoff_ms: int = 300_000
    probe_timeout_ms: int = 60_000  # a probe that never reports back frees its slot after this long
    lockout_ms: int = 300_000  # a model refused on a connection (401/403/404) is not tried there for this long

    _API = {
        "failureThreshold": "failure_threshold",
        "cooldownMs": "cooldown_ms",
        "baseBackoffMs": "base_backoff_ms",
        "maxBackoffMs": "max_backoff_ms",
        "probeTimeoutMs": "probe_timeout_ms",
        "lockoutMs": "lockout_ms",
    }

    def merged(self, raw: Mapping[str, Any]) -> Profile:
        """This profile with the API-named (camelCase) positive integers of ``raw`` applied."""
        changes = {
            attr: int(raw[name])
            for name, attr in self._API.items()
            if isinstance(raw.get(name), int) and not isinstance(raw.get(name), bool) and raw[name] > 0
        }
        return replace(self, **changes)

    def to_api(self) -> dict[str, int]:
        return {name: int(getattr(self, attr)) for name, attr in self._API.items()}


DEFAULT_PROFILES: Mapping[str, Profile] = {
    "provider": Profile(failure_threshold=10, cooldown_ms=30_000),
    "connection": Profile(failure_threshold=3, cooldown_ms=15_000),
}


def profiles_from(settings: Mapping[str, Any]) -> dict[str, Profile]:
    """Profiles from the snapshot's ``settings.resilience.profiles`` over the defaults."""
    res = settings.get("resilience")
    raw = res.get("profiles") if isinstance(res, Mapping) else None
    raw = raw if isinstance(raw, Mapping) else {}
    return {
        name: base.merged(raw[name]) if isinstance(raw.get(name), Mapping) else base
        for name, base in DEFAULT_PROFILES.items()
    }


def after_failure(health: Health, profile: Profile, now_ms: int, *, rate_limited: bool, retry_after_ms: int) -> Health:
    """The record after one failed attempt. ``rate_limited``: a 429 (cooldown, not a breaker failure)."""
    if rate_limited:
        level = health.backoff_level + 1
        wait = retry_after_ms or min(profile.base_backoff_ms * 2 ** (level - 1), profile.max_backoff_ms)
        return replace(health, cooldown_until_ms=now_ms + wait, backoff_level=level)
    failures = health.failures + 1
    open_until = health.open_until_ms
    if health.half_open(now_ms) or failures >= profile.failure_threshold:
        open_until = now_ms + profile.cooldown_ms
    cooldown = max(health.cooldown_until_ms, now_ms + retry_after_ms) if retry_after_ms else health.cooldown_until_ms
    return replace(health, failures=failures, open_until_ms=open_until, cooldown_until_ms=cooldown)


def locked_out(profile: Profile, now_ms: int, status: int) -> Health:
    """The lockout record after the provider refused a model with ``status`` (401, 403 or 404)."""
    return Health(locked_until_ms=now_ms + profile.lockout_ms, lock_status=status)
