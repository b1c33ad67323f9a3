"""The usage service's tables, as versioned migrations (component ``usage``).

Steps are append-only: a released step is never edited, a change is a new step. ``migrate_usage`` is safe when
several replicas start at once (``omniroute_core.migrate`` serialises them on an advisory lock).
"""

from __future__ import annotations

import asyncpg

from omniroute_core.migrate import migrate

__all__ = ["COMPONENT", "MIGRATIONS", "migrate_usage"]

COMPONENT = "usage"

# One row per attempt of one request. Every column is NOT NULL with the proto's zero value as default, so a
# query never has to tell "absent" from "zero" (proto3 can't either).
_V1_USAGE_EVENTS = """
CREATE TABLE usage_events (
    event_id              text        PRIMARY KEY,
    request_id            text        NOT NULL DEFAULT '',
    ts                    timestamptz NOT NULL,
    key_id                text        NOT NULL DEFAULT '',
    provider              text        NOT NULL DEFAULT '',
    model                 text        NOT NULL DEFAULT '',
    requested_model       text        NOT NULL DEFAULT '',
    connection_id         text        NOT NULL DEFAULT '',
    combo                 text        NOT NULL DEFAULT '',
    status                integer     NOT NULL DEFAULT 0,
    latency_ms            bigint      NOT NULL DEFAULT 0,
    ttft_ms               bigint      NOT NULL DEFAULT 0,
    input_tokens          bigint      NOT NULL DEFAULT 0,
    output_tokens         bigint      NOT NULL DEFAULT 0,
    cached_input_tokens   bigint      NOT NULL DEFAULT 0,
    cache_creation_tokens bigint      NOT NULL DEFAULT 0,
    reasoning_tokens      bigint      NOT NULL DEFAULT 0,
    total_tokens          bigint      NOT NULL DEFAULT 0,
    client_format         text        NOT NULL DEFAULT '',
    stream                boolean     NOT NULL DEFAULT false,
    attempt               integer     NOT NULL DEFAULT 0,
    error_type            text        NOT NULL DEFAULT '',
    endpoint              text        NOT NULL DEFAULT ''
);
CREATE INDEX usage_events_key_ts ON usage_events (key_id, ts);
CREATE INDEX usage_events_provider_ts ON usage_events (provider, ts);
CREATE INDEX usage_events_ts ON usage_events (ts);
"""

# The cost of each event at the prices in force when it was stored (a later price change does not rewrite history),
# and operator price overrides (provider '' = any provider serving that model).
_V2_PRICING = """
ALTER TABLE usage_events ADD COLUMN cost_usd numeric(20, 10) NOT NULL DEFAULT 0;
CREATE TABLE usage_pricing (
    provider       text        NOT NULL DEFAULT '',
    model          text        NOT NULL,
    input          numeric     NOT NULL,
    output         numeric     NOT NULL,
    cached_input   numeric,
    cache_creation numeric,
    reasoning      numeric,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, model)
);
"""

MIGRATIONS: tuple[str, ...] = (_V1_USAGE_EVENTS, _V2_PRICING)


async def migrate_usage(conn: asyncpg.Connection) -> int:
    """Bring the usage tables to the newest version; returns that version."""
    return await migrate(conn, COMPONENT, MIGRATIONS)
