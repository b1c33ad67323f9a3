"""The usage service's tables, as versioned migrations (component ``usage``).

Steps are append-only: a released step is never edited, a change is a new step. ``migrate_usage`` is safe when
several replicas start at once (``omniroute_core.migrate`` serialises them on an advisory lock).
"""

from __future__ import annotations

import asyncpg

from omniroute_core.migrate import migrate
from omniroute_usage.rollups import LATENCY_DDL, ROLLUPS, SUMS, latency_class_sql, table_ddl

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

# Released with step 3 and frozen since (steps never change): every grain keyed by key, provider, model and connection.
_V3_GRAINS = (("minute", "minute"), ("hour", "hour"), ("day", "day"))
_V3_SUMS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "latency_ms",
)


def _v3_table_ddl(grain: str) -> str:
    sums = ",\n".join(
        f"    {c} {'numeric(24, 10)' if c == 'cost_usd' else 'bigint'} NOT NULL DEFAULT 0" for c in _V3_SUMS
    )
    return f"""
CREATE TABLE usage_rollup_{grain} (
    bucket        timestamptz NOT NULL,
    key_id        text        NOT NULL,
    provider      text        NOT NULL,
    model         text        NOT NULL,
    connection_id text        NOT NULL,
    requests      bigint      NOT NULL DEFAULT 0,
    errors        bigint      NOT NULL DEFAULT 0,
{sums},
    PRIMARY KEY (bucket, key_id, provider, model, connection_id)
);
CREATE INDEX usage_rollup_{grain}_key ON usage_rollup_{grain} (key_id, bucket);
CREATE INDEX usage_rollup_{grain}_conn ON usage_rollup_{grain} (connection_id, bucket);
"""


# Rollups (see omniroute_usage.rollups), back-filled from the events stored before them; budgets per API key.
# warned_period is the start of the period whose 80% warning was sent, so each period warns once across replicas.
_V3_ROLLUPS_BUDGETS = (
    "".join(_v3_table_ddl(grain) for grain, _ in _V3_GRAINS)
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
        for grain, unit in _V3_GRAINS
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


def _backfill(table: str, dims: tuple[str, ...], source: str) -> str:
    cols = ", ".join(("requests", "errors", *SUMS))
    sums = ", ".join(f"sum({c})" for c in ("requests", "errors", *SUMS))
    keys = ", ".join(dims)
    return f"INSERT INTO {table} (bucket, {keys}, {cols}) SELECT bucket, {keys}, {sums} FROM {source} GROUP BY bucket, {keys};\n"  # noqa: S608, E501


# Rollups by the dimensions the summaries use (see omniroute_usage.rollups): the minute and hour tables lose the
# key and connection dimensions (with live traffic they held nearly one row per event), the hour_key and day_model
# tables are added, and the hourly latency histogram; all back-filled from the step 3 tables (and the events). The
# request logs group attempts through the (request_id) index and count later attempts through the small last one.
_NEW = {r.table: r for r in ROLLUPS}
_V4_ROLLUPS_BY_DIMENSION = (
    """
ALTER TABLE usage_rollup_minute RENAME TO usage_rollup_minute_v3;
ALTER INDEX usage_rollup_minute_pkey RENAME TO usage_rollup_minute_v3_pkey;
ALTER INDEX usage_rollup_minute_key RENAME TO usage_rollup_minute_v3_key;
ALTER INDEX usage_rollup_minute_conn RENAME TO usage_rollup_minute_v3_conn;
ALTER TABLE usage_rollup_hour RENAME TO usage_rollup_hour_v3;
ALTER INDEX usage_rollup_hour_pkey RENAME TO usage_rollup_hour_v3_pkey;
ALTER INDEX usage_rollup_hour_key RENAME TO usage_rollup_hour_v3_key;
ALTER INDEX usage_rollup_hour_conn RENAME TO usage_rollup_hour_v3_conn;
ALTER TABLE usage_rollup_day SET (fillfactor = 70);
"""
    + "".join(table_ddl(_NEW[t]) for t in ("usage_rollup_minute", "usage_rollup_hour", "usage_rollup_hour_key"))
    + table_ddl(_NEW["usage_rollup_day_model"])
    + LATENCY_DDL
    + _backfill("usage_rollup_minute", ("provider", "model"), "usage_rollup_minute_v3")
    + _backfill("usage_rollup_hour", ("provider", "model"), "usage_rollup_hour_v3")
    + _backfill("usage_rollup_hour_key", ("key_id",), "usage_rollup_hour_v3")
    + _backfill("usage_rollup_day_model", ("provider", "model"), "usage_rollup_day")
    + f"""
INSERT INTO usage_latency_hour (bucket, provider, class, n)
SELECT date_trunc('hour', ts, 'UTC'), provider, {latency_class_sql("latency_ms")}, count(*)
FROM usage_events GROUP BY 1, 2, 3;
DROP TABLE usage_rollup_minute_v3, usage_rollup_hour_v3;
CREATE INDEX usage_events_request ON usage_events (request_id) WHERE request_id <> '';
CREATE INDEX usage_events_later_attempts ON usage_events (ts) WHERE attempt > 1 AND request_id <> '';
"""  # noqa: S608
)

# The day rollup keyed by key only (budgets) and per-connection hour and day rollups: the step 3 day table held a row
# per key x model x connection, and updating those was a third of each batch's time. The (provider, ts) index goes:
# a provider's share of the (ts) index pages as fast, and its totals come from the rollups.
_V5_NARROW_DAY = (
    """
ALTER TABLE usage_rollup_day RENAME TO usage_rollup_day_v3;
ALTER INDEX usage_rollup_day_pkey RENAME TO usage_rollup_day_v3_pkey;
ALTER INDEX usage_rollup_day_key RENAME TO usage_rollup_day_v3_key;
ALTER INDEX usage_rollup_day_conn RENAME TO usage_rollup_day_v3_conn;
"""
    + "".join(table_ddl(_NEW[t]) for t in ("usage_rollup_day", "usage_rollup_day_conn", "usage_rollup_hour_conn"))
    + _backfill("usage_rollup_day", ("key_id",), "usage_rollup_day_v3")
    + _backfill("usage_rollup_day_conn", ("connection_id", "provider", "model"), "usage_rollup_day_v3")
    + f"""
INSERT INTO usage_rollup_hour_conn (bucket, connection_id, provider, model, requests, errors, {", ".join(SUMS)})
SELECT date_trunc('hour', ts, 'UTC'), connection_id, provider, model, count(*),
    count(*) FILTER (WHERE status >= 400 OR error_type <> ''), {", ".join(f"sum({c})" for c in SUMS)}
FROM usage_events GROUP BY 1, 2, 3, 4;
DROP TABLE usage_rollup_day_v3;
DROP INDEX usage_events_provider_ts;
"""  # noqa: S608
)

MIGRATIONS: tuple[str, ...] = (
    _V1_USAGE_EVENTS,
    _V2_PRICING,
    _V3_ROLLUPS_BUDGETS,
    _V4_ROLLUPS_BY_DIMENSION,
    _V5_NARROW_DAY,
)


async def migrate_usage(conn: asyncpg.Connection) -> int:
    """Bring the usage tables to the newest version; returns that version."""
    return await migrate(conn, COMPONENT, MIGRATIONS)
