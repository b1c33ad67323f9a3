"""Redis key layout of the edge's caches, shared with the control plane that reports and clears them."""

from __future__ import annotations

__all__ = [
    "CACHE_CLEAR_CHANNEL",
    "CACHE_INDEX",
    "CACHE_MEMORY",
    "CACHE_PREFIX",
    "CACHE_STATS",
    "IDEMPOTENCY_PREFIX",
]

CACHE_PREFIX = "omr:cache:e:"  # + sha256 of the scoped request → a stored reply
CACHE_INDEX = "omr:cache:index"  # sorted set of entry keys by store time (size limit, dbSize)
CACHE_STATS = "omr:cache:stats"  # hash: hits, misses (all edges)
CACHE_MEMORY = "omr:cache:memory"  # hash: edge instance id → "<size>/<max>/<unix time of report>"
CACHE_CLEAR_CHANNEL = "omr:cache:clear"  # pub/sub: every edge empties its in-process tier
IDEMPOTENCY_PREFIX = "omr:idem"
