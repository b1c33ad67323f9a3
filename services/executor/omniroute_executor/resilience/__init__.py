"""Resilience: circuit breakers and cooldowns per provider and per connection, shared through Redis."""

from omniroute_executor.resilience.breaker import (
    DEFAULT_PROFILES,
    Health,
    Profile,
    after_failure,
    locked_out,
    profiles_from,
)
from omniroute_executor.resilience.ratelimits import RateLimitRecorder
from omniroute_executor.resilience.store import HealthStore

__all__ = [
    "DEFAULT_PROFILES",
    "Health",
    "HealthStore",
    "Profile",
    "RateLimitRecorder",
    "after_failure",
    "locked_out",
    "profiles_from",
]
