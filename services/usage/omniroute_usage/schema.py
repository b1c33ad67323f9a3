"""The usage service's tables, as versioned migrations (component ``usage``).

Steps are append-only: a released step is never edited, a change is a new step. ``migrate_usage`` is safe when
several replicas start at once (``omniroute_core.migrate`` serialises them on an advisory lock).
"""

from __future__ import annotations

import asyncpg

from omniroute_core.migrate import migrate
from omniroute_usage.rollups import GRAINS, ROLLUP_SCHEMA

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

# Rollups (see omniroute_usage.rollups), back-filled from the events stored before them; budgets per API key.
# warned_period is the start of the period whose 80% warning was sent, so each period warns once across replicas.
_V3_ROLLUPS_BUDGETS = (
    ROLLUP_SCHEMA
    + "".join(
        f"""
INSERT INTO usage_rollup_{grain} (bucket, key_id, provider, model, connection_id, requests, errors,
    input_tokens, output_tokens, cached_input_tokens, cache_creation_tokens, reasoning_tokens, total_tokens,
    cost_usd, latency_ms)
SELECT date_trunc('{unit}', ts, 'UTC'), key_id, provider, model, connection_id, count(*),
    count(*) FILTER (WHERE status >= 400 OR error_type <> ''), sum(input_tokens), sum(output_tokens),
    sum(cached_input_tokens), sum(cache_creation_tokens), sum(reasoning_tokens), sum(total_tokens), sum(cost_usd),
    sum(latency_ms)
FROM usage_events GROUP BY 1, 2, 3, 4, 5;
"""  # noqa: S608
        for grain, unit in GRAINS
    )
    + """
CREATE TABLE usage_budgets (
    key_id        text           PRIMARY KEY,
    limit_usd     numeric(20, 10) NOT NULL CHECK (limit_usd >= 0),
    period        text           NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
    warned_period timestamptz,
    created_at    timestamptz    NOT NULL DEFAULT now(),
    updated_at    timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_connection_ts ON usage_events (connection_id, ts);
"""
)

MIGRATIONS: tuple[str, ...] = (_V1_USAGE_EVENTS, _V2_PRICING, _V3_ROLLUPS_BUDGETS)


async def migrate_usage(conn: asyncpg.Connection) -> int:
    """Bring the usage tables to the newest version; returns that version."""
    return await migrate(conn, COMPONENT, MIGRATIONS)
