"""Resilience: circuit breakers and cooldowns per provider and per connection, shared through Redis."""

from omniroute_executor.resilience.breaker import DEFAULT_PROFILES, Health, Profile, after_failure, profiles_from
from omniroute_executor.resilience.store import HealthStore

__all__ = ["DEFAULT_PROFILES", "Health", "HealthStore", "Profile", "after_failure", "profiles_from"]
