"""Minute, hour and day rollups of ``usage_events``, maintained by the insert itself.

One statement moves a staged batch into ``usage_events`` (skipping known event ids) and adds exactly the newly
stored rows to the three rollup tables (data-modifying CTEs run once each, inside the batch's transaction), so a
rollup can never disagree with the events: a redelivered batch adds nothing twice, a failed one adds nothing.

Rollup rows are keyed by (bucket, key_id, provider, model, connection_id), buckets truncated in UTC. ``requests``
counts events (attempts), ``errors`` those with a status >= 400 or an error type. Summaries over hours and days
read these tables instead of the raw events.
"""

from __future__ import annotations

__all__ = ["GRAINS", "ROLLUP_SCHEMA", "insert_and_roll_up"]

# (table suffix, date_trunc unit)
GRAINS: tuple[tuple[str, str], ...] = (("minute", "minute"), ("hour", "hour"), ("day", "day"))

_SUMS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "latency_ms",
)
_DIMS = "key_id, provider, model, connection_id"


def _table_ddl(grain: str) -> str:
    sums = ",\n".join(f"    {c} {'numeric(24, 10)' if c == 'cost_usd' else 'bigint'} NOT NULL DEFAULT 0" for c in _SUMS)
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


ROLLUP_SCHEMA = "".join(_table_ddl(grain) for grain, _ in GRAINS)


def _upsert(grain: str, unit: str) -> str:
    sums = ", ".join(f"sum({c})" for c in _SUMS)
    updates = ", ".join(f"{c} = r.{c} + excluded.{c}" for c in ("requests", "errors", *_SUMS))
    # ORDER BY gives every writer the same row-lock order, so concurrent replicas queue instead of deadlocking
    return f"""
r_{grain} AS (
    INSERT INTO usage_rollup_{grain} AS r (bucket, {_DIMS}, requests, errors, {", ".join(_SUMS)})
    SELECT date_trunc('{unit}', ts, 'UTC') AS b, {_DIMS}, count(*),
           count(*) FILTER (WHERE status >= 400 OR error_type <> ''), {sums}
    FROM new GROUP BY b, {_DIMS} ORDER BY b, {_DIMS}
    ON CONFLICT (bucket, {_DIMS}) DO UPDATE SET {updates}
)"""  # noqa: S608


def insert_and_roll_up(columns: tuple[str, ...], staging: str) -> str:
    """The statement moving ``staging`` into ``usage_events`` and the rollups; returns the new event ids.

    Built from module constants only (never from input).
    """
    cols = ", ".join(columns)
    needed = ", ".join(("event_id", "ts", _DIMS, "status", "error_type", *_SUMS))
    ctes = ",".join(_upsert(grain, unit) for grain, unit in GRAINS)
    return f"""
WITH new AS (
    INSERT INTO usage_events ({cols}) SELECT {cols} FROM {staging}
    ON CONFLICT (event_id) DO NOTHING
    RETURNING {needed}
),{ctes}
SELECT event_id FROM new
"""  # noqa: S608
