"""Versioned schema migrations, safe when several replicas start at once.

Each component (``dashboard``, ``usage``) owns an ordered list of SQL steps. ``migrate`` takes a transaction-level
advisory lock per component, reads the applied versions from ``schema_migrations`` and applies the missing steps,
each in its own transaction together with its version row. A replica that loses the race waits on the lock and
then finds nothing left to do.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import asyncpg

__all__ = ["migrate"]

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component text NOT NULL,
    version integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


async def migrate(conn: asyncpg.Connection, component: str, steps: Sequence[str]) -> int:
    """Apply ``steps[i]`` as version ``i + 1`` where not applied yet. Returns the resulting version."""
    lock_id = zlib.crc32(f"omniroute:{component}".encode())
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
        await conn.execute(_BOOTSTRAP)
        applied = {
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migrations WHERE component = $1", component)
        }
        for version, sql in enumerate(steps, start=1):
            if version in applied:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version) VALUES ($1, $2)", component, version
                )
    return len(steps)
