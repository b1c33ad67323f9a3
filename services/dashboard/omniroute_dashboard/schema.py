"""The dashboard's tables (component ``dashboard`` of :mod:`omniroute_core.migrate`).

Steps are append-only: a released step is never edited, a change is a new step. ``config_version`` holds one row
whose ``version`` every configuration change increments inside the change's own transaction, so a snapshot read
in one transaction always carries the version that matches its content.
"""

from __future__ import annotations

import asyncpg

from omniroute_core.migrate import migrate

__all__ = ["COMPONENT", "STEPS", "ensure_schema"]

COMPONENT = "dashboard"

STEPS: tuple[str, ...] = (
    """
    CREATE TABLE provider_connections (
        id text PRIMARY KEY,
        provider text NOT NULL,
        name text NOT NULL,
        base_url text NOT NULL DEFAULT '',
        api_key_enc text NOT NULL DEFAULT '',
        priority integer NOT NULL DEFAULT 0,
        is_active boolean NOT NULL DEFAULT true,
        headers jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX provider_connections_provider_idx ON provider_connections (provider, priority);

    CREATE TABLE api_keys (
        id text PRIMARY KEY,
        name text NOT NULL,
        key_hash text NOT NULL UNIQUE,
        key_prefix text NOT NULL,
        scopes text[] NOT NULL DEFAULT '{}',
        revoked boolean NOT NULL DEFAULT false,
        expires_at timestamptz,
        no_log boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    );

    -- one row; source 'generated' (first start) or 'user' (set through the API, wins over INITIAL_PASSWORD)
    CREATE TABLE admin_credentials (
        id smallint PRIMARY KEY CHECK (id = 1),
        password_hash text NOT NULL,
        source text NOT NULL CHECK (source IN ('generated', 'user')),
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE dashboard_sessions (
        token_hash text PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX dashboard_sessions_expires_idx ON dashboard_sessions (expires_at);

    CREATE TABLE settings (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE config_version (
        id smallint PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO config_version (id, version) VALUES (1, 0);
    """,
    # combos: named fallback chains; ``models`` is the list of steps as the API accepts them
    """
    CREATE TABLE combos (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        strategy text NOT NULL,
        models jsonb NOT NULL,
        config jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    # key restrictions: model patterns (fnmatch) and per-key rate limits ({"rpm", "tpm", "concurrent"})
    """
    ALTER TABLE api_keys
        ADD COLUMN allowed_models text[] NOT NULL DEFAULT '{}',
        ADD COLUMN blocked_models text[] NOT NULL DEFAULT '{}',
        ADD COLUMN rate_limits jsonb NOT NULL DEFAULT '{}'::jsonb;
    """,
    # per-key cache eligibility ('deterministic' | 'always' | 'never'); NULL: the gateway's cache setting
    """
    ALTER TABLE api_keys ADD COLUMN cache_policy text;
    """,
    # a connection's values of its provider's URL parameters (Azure: {"apiVersion": "..."})
    """
    ALTER TABLE provider_connections ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb;
    """,
)


async def ensure_schema(dsn: str) -> int:
    """Apply the missing steps on a dedicated connection; safe when replicas start together. Returns the version."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, COMPONENT, STEPS)
    finally:
        await conn.close()
