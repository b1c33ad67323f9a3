"""PostgreSQL access shared by the routers: the pool, the config version and the snapshot of the config tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from omniroute_core import jsonx
from omniroute_core.snapshot import ApiKey, ConfigSnapshot, ProviderConnection, RateLimits, parse_combo
from omniroute_dashboard.routing_store import load_routing

__all__ = ["Conn", "Pool", "bump_version", "create_pool", "load_snapshot", "read_setting", "to_ms", "write_setting"]

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def _init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    # jsonb columns round-trip as Python objects through the one JSON module
    await conn.set_type_codec("jsonb", encoder=jsonx.dumps_str, decoder=jsonx.loads, schema="pg_catalog")


async def create_pool(dsn: str, max_size: int) -> Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, init=_init_connection)
    assert pool is not None
    return pool


async def bump_version(conn: Conn, at_least: int = 0) -> int:
    """Increment the config version (to above ``at_least`` too) inside the caller's transaction; returns it.

    The row lock serialises concurrent changes, so versions are committed in the order they are handed out.
    """
    version = await conn.fetchval(
        "UPDATE config_version SET version = GREATEST(version, $1) + 1, updated_at = now() WHERE id = 1 "
        "RETURNING version",
        at_least,
    )
    return int(version)


_READ_SETTING = "SELECT value FROM settings WHERE key = $1"
_READ_SETTING_LOCKED = _READ_SETTING + " FOR UPDATE"


async def read_setting(conn: Conn, key: str, *, lock: bool = False) -> dict[str, Any]:
    """The JSON object stored under ``key`` in ``settings`` (``{}`` when unset); ``lock`` holds the row until the
    transaction ends, for a read-modify-write."""
    sql = _READ_SETTING_LOCKED if lock else _READ_SETTING
    value = await conn.fetchval(sql, key)
    return dict(value) if isinstance(value, dict) else {}


async def write_setting(conn: Conn, key: str, value: dict[str, Any]) -> None:
    """Store ``value`` under ``key`` (inserted or replaced). The caller's transaction publishes the change."""
    await conn.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        key,
        value,
    )


def to_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


async def load_snapshot(pool: Pool) -> ConfigSnapshot:
    """Read the version and every config table in one repeatable-read transaction, so they agree."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        version = await conn.fetchval("SELECT version FROM config_version WHERE id = 1")
        providers = await conn.fetch(
            "SELECT id, provider, name, base_url, api_key_enc, priority, is_active, headers, options "
            "FROM provider_connections ORDER BY id"
        )
        keys = await conn.fetch(
            "SELECT id, name, key_hash, scopes, revoked, expires_at, no_log, allowed_models, blocked_models, "
            "rate_limits, cache_policy FROM api_keys ORDER BY id"
        )
        settings_rows = await conn.fetch("SELECT key, value FROM settings ORDER BY key")
        combo_rows = await conn.fetch("SELECT id, name, strategy, models, config FROM combos ORDER BY name")
        aliases, nodes, custom_models = await load_routing(conn)
    connections = tuple(
        ProviderConnection(
            id=r["id"],
            provider=r["provider"],
            name=r["name"],
            base_url=r["base_url"],
            api_key_enc=r["api_key_enc"],
            priority=r["priority"],
            is_active=r["is_active"],
            headers=r["headers"],
            options=r["options"],
        )
        for r in providers
    )
    api_keys = tuple(
        ApiKey(
            id=r["id"],
            name=r["name"],
            key_hash=r["key_hash"],
            scopes=tuple(r["scopes"]),
            revoked=r["revoked"],
            expires_at_ms=to_ms(r["expires_at"]),
            no_log=r["no_log"],
            allowed_models=tuple(r["allowed_models"]),
            blocked_models=tuple(r["blocked_models"]),
            rate_limits=RateLimits.parse(r["rate_limits"]),
            cache_policy=r["cache_policy"] or "",
        )
        for r in keys
    )
    settings: dict[str, Any] = {r["key"]: r["value"] for r in settings_rows}
    combos = tuple(parse_combo(dict(r)) for r in combo_rows)
    return ConfigSnapshot.build(
        int(version), connections, api_keys, settings, combos, aliases=aliases, nodes=nodes, custom_models=custom_models
    )
