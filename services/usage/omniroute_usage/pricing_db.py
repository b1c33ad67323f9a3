"""Price overrides in PostgreSQL (``usage_pricing``) and the writer's view of the current price book.

Each replica reloads overrides at most every ``refresh_s`` seconds, so an override set through any replica (or
the dashboard) prices events on every replica within that delay; the replica that accepted it applies it at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import asyncpg

from omniroute_usage.pricing import Price, PriceBook

__all__ = ["PricingSource", "StaticPricing", "load_overrides", "save_override"]

log = logging.getLogger(__name__)


async def load_overrides(pool: asyncpg.Pool) -> dict[tuple[str, str], Price]:
    """Every override keyed by ``(provider, model)`` (lower-cased; provider ``""`` = any provider)."""
    rows = await pool.fetch(
        "SELECT provider, model, input, output, cached_input, cache_creation, reasoning FROM usage_pricing"
    )
    return {
        (r["provider"], r["model"]): Price(
            r["input"], r["output"], r["cached_input"], r["cache_creation"], r["reasoning"]
        )
        for r in rows
    }


async def save_override(pool: asyncpg.Pool, provider: str, model: str, price: Price) -> None:
    """Insert or replace the override of ``(provider, model)``; names are stored lower-cased."""
    await pool.execute(
        """
        INSERT INTO usage_pricing (provider, model, input, output, cached_input, cache_creation, reasoning)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (provider, model) DO UPDATE SET input = excluded.input, output = excluded.output,
            cached_input = excluded.cached_input, cache_creation = excluded.cache_creation,
            reasoning = excluded.reasoning, updated_at = now()
        """,
        provider.lower(),
        model.lower(),
        price.input,
        price.output,
        price.cached_input,
        price.cache_creation,
        price.reasoning,
    )


class PricingSource:
    """The current :class:`PriceBook`: shipped prices plus overrides reloaded at most every ``refresh_s``.

    When PostgreSQL cannot be read, the previous book stays in use (an event is never held back for pricing).
    """

    def __init__(self, pool: asyncpg.Pool, shipped: Mapping[tuple[str, str], Price], refresh_s: float = 10.0) -> None:
        self._pool = pool
        self._shipped = dict(shipped)
        self._refresh_s = refresh_s
        self._book = PriceBook(self._shipped, {})
        self._loaded_at = float("-inf")

    async def book(self) -> PriceBook:
        """The book, reloaded first when older than ``refresh_s``."""
        if time.monotonic() - self._loaded_at >= self._refresh_s:
            await self.reload()
        return self._book

    async def reload(self) -> None:
        """Reload overrides now (after a change through this replica). Failures are logged, not raised."""
        try:
            overrides = await load_overrides(self._pool)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("price overrides not reloaded, keeping the previous ones: %r", exc)
            # try again on the next batch's refresh, not on every event
            self._loaded_at = time.monotonic()
            return
        self._book = PriceBook(self._shipped, overrides)
        self._loaded_at = time.monotonic()


class StaticPricing:
    """A fixed book (shipped prices only, or whatever a test passes); same interface as :class:`PricingSource`."""

    def __init__(self, book: PriceBook) -> None:
        self._book = book

    async def book(self) -> PriceBook:
        return self._book

    async def reload(self) -> None:
        """Nothing to reload."""
