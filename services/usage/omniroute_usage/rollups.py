"""Rollups of ``usage_events`` at several grains and dimension sets, maintained by the insert itself.

One statement moves a staged batch into ``usage_events`` (skipping known event ids) and adds exactly the newly
stored rows to every rollup table (data-modifying CTEs run once each, inside the batch's transaction), so a rollup
can never disagree with the events: a redelivered batch adds nothing twice, a failed one adds nothing.

Each table is keyed by ``(bucket, *dims)``, buckets truncated in UTC. ``requests`` counts events (attempts),
``errors`` those with a status >= 400 or an error type. The dimension sets are chosen so that a batch (live
traffic: one or two minutes of events) touches few rollup rows, and every summary finds a table that is small for
its filters (:func:`pick`):

- ``usage_rollup_minute``, ``usage_rollup_hour``, ``usage_rollup_day_model``: provider and model only (tens of
  rows per bucket): history without a key or connection filter;
- ``usage_rollup_hour_conn``, ``usage_rollup_day_conn``: per connection, provider and model (per-connection usage,
  history of one connection);
- ``usage_rollup_hour_key``, ``usage_rollup_day``: per key (budgets, history of one key).

A filter no table holds at the grain asked (a minute history of one key; a key together with a model, provider or
connection) is answered from the events, through the key's or the connection's ``(…, ts)`` index.

``usage_latency_hour`` counts events per (hour, provider, latency class), classes 10% wide on a log scale
(:data:`LATENCY_BASE`), for latency percentiles over long windows.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LATENCY_BASE", "LATENCY_DDL", "ROLLUPS", "Rollup", "insert_and_roll_up", "latency_class_sql", "pick"]

SUMS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "latency_ms",
)
# every dimension a summary can filter or group on
ALL_DIMS: tuple[str, ...] = ("key_id", "provider", "model", "connection_id")
LATENCY_BASE = 1.1


@dataclass(frozen=True, slots=True)
class Rollup:
    table: str
    unit: str  # date_trunc unit of the bucket
    dims: tuple[str, ...]


# smallest first within a grain: pick() takes the first that covers a query's dimensions
ROLLUPS: tuple[Rollup, ...] = (
    Rollup("usage_rollup_minute", "minute", ("provider", "model")),
    Rollup("usage_rollup_hour", "hour", ("provider", "model")),
    Rollup("usage_rollup_hour_key", "hour", ("key_id",)),
    Rollup("usage_rollup_hour_conn", "hour", ("connection_id", "provider", "model")),
    Rollup("usage_rollup_day_model", "day", ("provider", "model")),
    Rollup("usage_rollup_day_conn", "day", ("connection_id", "provider", "model")),
    Rollup("usage_rollup_day", "day", ("key_id",)),
)


def pick(unit: str, dims: set[str]) -> Rollup | None:
    """The smallest rollup at ``unit`` holding every dimension in ``dims``; None when none does."""
    return next((r for r in ROLLUPS if r.unit == unit and dims <= set(r.dims)), None)


def table_ddl(rollup: Rollup) -> str:
    """``CREATE TABLE`` of ``rollup`` (used by the migration that introduced it; never change a released one)."""
    dims = "".join(f"    {d} text NOT NULL,\n" for d in rollup.dims)
    sums = ",\n".join(f"    {c} {'numeric(24, 10)' if c == 'cost_usd' else 'bigint'} NOT NULL DEFAULT 0" for c in SUMS)
    # updated in place batch after batch: room on each page keeps the updates HOT (no index entry per update)
    return f"""
CREATE TABLE {rollup.table} (
    bucket   timestamptz NOT NULL,
{dims}    requests bigint NOT NULL DEFAULT 0,
    errors   bigint NOT NULL DEFAULT 0,
{sums},
    PRIMARY KEY (bucket, {", ".join(rollup.dims)})
) WITH (fillfactor = 70);
"""


def latency_class_sql(column: str) -> str:
    """SQL of the latency class of ``column`` (ms): ``floor(log_1.1(ms))``, 0 for 1 ms and below."""
    return f"floor(ln(greatest({column}, 1)) / ln({LATENCY_BASE}))::int2"


def _upsert(n: int, rollup: Rollup) -> str:
    dims = ", ".join(rollup.dims)
    sums = ", ".join(f"sum({c})" for c in SUMS)
    updates = ", ".join(f"{c} = r.{c} + excluded.{c}" for c in ("requests", "errors", *SUMS))
    # ORDER BY gives every writer the same row-lock order, so concurrent replicas queue instead of deadlocking
    return f"""
r{n} AS (
    INSERT INTO {rollup.table} AS r (bucket, {dims}, requests, errors, {", ".join(SUMS)})
    SELECT {rollup.unit}_b, {dims}, count(*), count(*) FILTER (WHERE failed), {sums}
    FROM new GROUP BY {rollup.unit}_b, {dims} ORDER BY {rollup.unit}_b, {dims}
    ON CONFLICT (bucket, {dims}) DO UPDATE SET {updates}
)"""  # noqa: S608


_LATENCY = """
lat AS (
    INSERT INTO usage_latency_hour AS r (bucket, provider, class, n)
    SELECT hour_b, provider, latency_class, count(*)
    FROM new GROUP BY hour_b, provider, latency_class ORDER BY hour_b, provider, latency_class
    ON CONFLICT (bucket, provider, class) DO UPDATE SET n = r.n + excluded.n
)"""

LATENCY_DDL = """
CREATE TABLE usage_latency_hour (
    bucket   timestamptz NOT NULL,
    provider text        NOT NULL,
    class    int2        NOT NULL,
    n        bigint      NOT NULL,
    PRIMARY KEY (bucket, provider, class)
) WITH (fillfactor = 70);
"""


def insert_and_roll_up(columns: tuple[str, ...], staging: str) -> str:
    """The statement moving ``staging`` into ``usage_events`` and the rollups; returns the new event ids, each with
    whether its key has a budget (the writer checks budgets only for batches holding such a key).

    Built from module constants only (never from input).
    """
    cols = ", ".join(columns)
    # each bucket and class computed once per row, not once per rollup (a first pass summing the batch by minute and
    # every dimension, which the rollups then summed again, saved ~12 % with live traffic's few groups per batch but
    # cost ~30 % of the store path's throughput on events spread over time, where each row is its own group)
    needed = ", ".join(
        (
            "event_id",
            *ALL_DIMS,
            *SUMS,
            "status >= 400 OR error_type <> '' AS failed",
            *(f"date_trunc('{unit}', ts, 'UTC') AS {unit}_b" for unit in ("minute", "hour", "day")),
            f"{latency_class_sql('latency_ms')} AS latency_class",
        )
    )
    ctes = ",".join(_upsert(n, rollup) for n, rollup in enumerate(ROLLUPS))
    return f"""
WITH new AS (
    INSERT INTO usage_events ({cols}) SELECT {cols} FROM {staging}
    ON CONFLICT (event_id) DO NOTHING
    RETURNING {needed}
),{ctes},{_LATENCY}
SELECT n.event_id, b.key_id IS NOT NULL AS budgeted FROM new n LEFT JOIN usage_budgets b ON b.key_id = n.key_id
"""  # noqa: S608
