"""Tables of the routing configuration (model aliases, provider nodes, custom models) and their snapshot part.

Their own migration component (``dashboard-routing``), like the audit log's, so their steps never interleave with
other features' steps of the ``dashboard`` component. :func:`load_routing` reads them inside the snapshot's
transaction (:func:`omniroute_dashboard.store.load_snapshot`); :func:`names_view` builds the part of a snapshot
that name resolution reads (combos, aliases, nodes, custom models), for validating a change before it commits.

Every change to routing names (an alias, a node prefix, a combo) first takes :func:`lock_names`, so two concurrent
changes cannot together create a cycle or a clash that each alone would not.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from omniroute_core.migrate import migrate
from omniroute_core.nodes import CustomModel, ProviderNode
from omniroute_core.snapshot import ConfigSnapshot, parse_combo

__all__ = [
    "COMPONENT",
    "STEPS",
    "custom_model_of",
    "ensure_routing_schema",
    "load_routing",
    "lock_names",
    "names_view",
    "node_of",
]

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

COMPONENT = "dashboard-routing"
STEPS: tuple[str, ...] = (
    """
    -- alias → target model string (a provider/model, a combo, another alias or a bare catalog name)
    CREATE TABLE model_aliases (
        alias text PRIMARY KEY,
        model text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    -- OpenAI-/Anthropic-compatible endpoints routable as <prefix>/<model>; headers_enc is AES-GCM (aad = id)
    CREATE TABLE provider_nodes (
        id text PRIMARY KEY,
        prefix text NOT NULL,
        name text NOT NULL,
        type text NOT NULL,
        api_type text NOT NULL,
        base_url text NOT NULL,
        headers_enc text NOT NULL DEFAULT '',
        chat_path text NOT NULL DEFAULT '',
        models_path text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX provider_nodes_prefix_idx ON provider_nodes (lower(prefix));

    -- a model id added to a catalog provider or a node (provider = the catalog id or the node id)
    CREATE TABLE provider_models (
        provider text NOT NULL,
        model text NOT NULL,
        type text NOT NULL DEFAULT 'chat',
        name text NOT NULL DEFAULT '',
        prices jsonb NOT NULL DEFAULT '{}'::jsonb,
        reasoning boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, model)
    );
    """,
)


async def ensure_routing_schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, COMPONENT, STEPS)
    finally:
        await conn.close()


async def lock_names(conn: Conn) -> None:
    """Serialise changes to routing names inside the caller's transaction (the combos table's lock doubles as
    the names lock, since combo changes already take it)."""
    await conn.execute("LOCK TABLE combos IN SHARE ROW EXCLUSIVE MODE")


def node_of(row: asyncpg.Record) -> ProviderNode:
    return ProviderNode(
        id=row["id"],
        prefix=row["prefix"],
        name=row["name"],
        type=row["type"],
        api_type=row["api_type"],
        base_url=row["base_url"],
        headers_enc=row["headers_enc"],
        chat_path=row["chat_path"],
        models_path=row["models_path"],
    )


def custom_model_of(row: asyncpg.Record) -> CustomModel:
    prices: dict[str, Any] = row["prices"] or {}
    return CustomModel(
        provider=row["provider"],
        model=row["model"],
        type=row["type"],
        name=row["name"],
        prices={str(k): float(v) for k, v in prices.items()},
        reasoning=row["reasoning"],
    )


async def load_routing(conn: Conn) -> tuple[dict[str, str], tuple[ProviderNode, ...], tuple[CustomModel, ...]]:
    """Aliases, nodes and custom models, in a stable order."""
    aliases = {
        r["alias"]: r["model"] for r in await conn.fetch("SELECT alias, model FROM model_aliases ORDER BY alias")
    }
    nodes = tuple(node_of(r) for r in await conn.fetch("SELECT * FROM provider_nodes ORDER BY prefix"))
    models = tuple(
        custom_model_of(r) for r in await conn.fetch("SELECT * FROM provider_models ORDER BY provider, model")
    )
    return aliases, nodes, models


async def names_view(conn: Conn, *, aliases: dict[str, str] | None = None) -> ConfigSnapshot:
    """What name resolution reads, from the caller's transaction; ``aliases`` replaces the stored ones (to check a
    change before writing it). Connections and keys are left out: they do not change what a name means."""
    stored, nodes, models = await load_routing(conn)
    combos = tuple(
        parse_combo(dict(r)) for r in await conn.fetch("SELECT id, name, strategy, models, config FROM combos")
    )
    return ConfigSnapshot.build(
        0, (), (), {}, combos, aliases=stored if aliases is None else aliases, nodes=nodes, custom_models=models
    )
