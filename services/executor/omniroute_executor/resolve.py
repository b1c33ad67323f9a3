"""Model resolution for the executor: the shared rules of :mod:`omniroute_core.resolution`.

The reading of a model string (``prefix/model``, aliases, combos, catalog inference, the 400 listing the
candidates of an ambiguous name) lives in the core, because the dashboard answers ``POST /api/models/availability``
with exactly the same rules; the executor adds the ordering (:mod:`omniroute_executor.routing`).
"""

from __future__ import annotations

from omniroute_core.resolution import ResolveError, Target, active_connections, builtin_connection

__all__ = ["ResolveError", "Target", "active_connections", "builtin_connection"]
