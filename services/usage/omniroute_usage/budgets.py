"""Spending budgets per API key: status, changes, and the once-per-period warning at a share of the limit.

A budget is a USD limit per calendar period in UTC (``daily``: from midnight, ``weekly``: from Monday midnight,
``monthly``: from the 1st). Spend is the sum of ``cost_usd`` of the key's events stored in the current period, read
from the day rollup (at most 31 rows per key and dimension), so a check never scans raw events and every replica
of every service sees the same spend. Spend lags ingestion by one writer batch (``BATCH_WAIT_MS``, and at most
``BATCH_LINGER_MS`` more under steady traffic).

The warning fires once per key and period, whichever replica stores the event that crosses the threshold: the
``UPDATE ... WHERE warned_period IS DISTINCT FROM <period start>`` is re-checked on the locked row, so concurrent
replicas cannot both claim it. It is logged, counted and published on core NATS subject
``omniroute.budget.warning`` as JSON (``{"keyId", "limit", "spent", "ratio", "period", "periodStart",
"resetAt"}``); publication is best effort (at most once).

A stored batch that leaves a key at or past its limit is also announced on ``omniroute.budget.state``
(:data:`omniroute_core.events.BUDGET_STATE_SUBJECT`, ``{"keyId", "state": "exceeded"}``), after every batch that
does (not once): edges cache budget answers for a couple of seconds, and this notice makes each of them ask again
right away, so a key's overshoot is bounded by the metering pipeline's delay rather than by that cache. Keys well
under their budget cost one read per batch (the warning share filters them), as before; a batch whose keys have no
budget (as seen by its insert) costs none.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from prometheus_client import Counter

from omniroute_core import jsonx
from omniroute_core.events import BUDGET_STATE_SUBJECT

__all__ = [
    "PERIODS",
    "WARNING_SUBJECT",
    "BudgetStatus",
    "BudgetWarner",
    "budget_status",
    "set_budget",
]

log = logging.getLogger(__name__)

PERIODS = ("daily", "weekly", "monthly")
WARNING_SUBJECT = "omniroute.budget.warning"

# the period's start and the next one, computed by PostgreSQL so that every replica agrees on them
_PERIOD = """
CROSS JOIN LATERAL (
    SELECT date_trunc(CASE b.period WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week' ELSE 'month' END,
                      now(), 'UTC') AS start,
           CASE b.period WHEN 'daily' THEN interval '1 day' WHEN 'weekly' THEN interval '7 days'
                         ELSE interval '1 month' END AS length
) p
CROSS JOIN LATERAL (
    SELECT coalesce(sum(d.cost_usd), 0) AS spent FROM usage_rollup_day d
    WHERE d.key_id = b.key_id AND d.bucket >= p.start
) s
"""
_STATUS = f"""
SELECT b.key_id, b.limit_usd, b.period, p.start, p.start + p.length AS reset_at, s.spent
FROM usage_budgets b {_PERIOD}
WHERE $1::text IS NULL OR b.key_id = $1
ORDER BY b.key_id
"""  # noqa: S608
_NEAR_LIMIT = f"""
SELECT b.key_id, b.limit_usd, b.period, p.start, p.start + p.length AS reset_at, s.spent
FROM usage_budgets b {_PERIOD}
WHERE b.key_id = ANY($1::text[]) AND s.spent >= b.limit_usd * $2
"""  # noqa: S608
_CLAIM_WARNINGS = f"""
WITH due AS (
    SELECT b.key_id, b.limit_usd, b.period, p.start, p.start + p.length AS reset_at, s.spent
    FROM usage_budgets b {_PERIOD}
    WHERE b.key_id = ANY($1::text[]) AND b.limit_usd > 0 AND s.spent >= b.limit_usd * $2
)
UPDATE usage_budgets u SET warned_period = due.start FROM due
WHERE u.key_id = due.key_id AND u.warned_period IS DISTINCT FROM due.start
RETURNING due.key_id, due.limit_usd, due.period, due.start, due.reset_at, due.spent
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One key's budget in its current period."""

    key_id: str
    limit: Decimal
    period: str
    period_start: dt.datetime
    reset_at: dt.datetime
    spent: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.limit - self.spent)

    @property
    def allowed(self) -> bool:
        return self.spent < self.limit

    def to_api(self, warn_ratio: float) -> dict[str, Any]:
        """The API shape: ``keyId, limit, period, spent, remaining, percentUsed, periodStart, resetAt (ISO 8601
        UTC), warning (at or past the warning share), exceeded``."""
        used = float(self.spent / self.limit * 100) if self.limit > 0 else (100.0 if self.spent > 0 else 0.0)
        return {
            "keyId": self.key_id,
            "limit": float(self.limit),
            "period": self.period,
            "spent": float(self.spent),
            "remaining": float(self.remaining),
            "percentUsed": round(used, 2),
            "periodStart": self.period_start.isoformat(),
            "resetAt": self.reset_at.isoformat(),
            "warning": used >= warn_ratio * 100,
            "exceeded": not self.allowed,
        }


def _status(r: asyncpg.Record) -> BudgetStatus:
    return BudgetStatus(r["key_id"], r["limit_usd"], r["period"], r["start"], r["reset_at"], r["spent"])


async def budget_status(pool: asyncpg.Pool, key_id: str | None = None) -> list[BudgetStatus]:
    """Status of ``key_id``'s budget (a list of at most one), or of every budget when ``key_id`` is None."""
    return [_status(r) for r in await pool.fetch(_STATUS, key_id)]


async def set_budget(pool: asyncpg.Pool, key_id: str, limit: Decimal, period: str) -> BudgetStatus:
    """Create or replace ``key_id``'s budget and return its status. A changed limit or period may warn again."""
    assert period in PERIODS
    await pool.execute(
        """
        INSERT INTO usage_budgets (key_id, limit_usd, period) VALUES ($1, $2, $3)
        ON CONFLICT (key_id) DO UPDATE SET limit_usd = excluded.limit_usd, period = excluded.period,
            warned_period = NULL, updated_at = now()
        """,
        key_id,
        limit,
        period,
    )
    (status,) = await budget_status(pool, key_id)
    return status


class BudgetWarner:
    """Called by the writer after each stored batch with the keys it touched; see the module docstring."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: Callable[[str, bytes], Awaitable[None]],
        warnings: Counter,
        ratio: float = 0.8,
    ) -> None:
        self._pool = pool
        self._publish = publish
        self._warnings = warnings
        self._ratio = Decimal(str(ratio))

    async def check(self, key_ids: Collection[str]) -> list[BudgetStatus]:
        """Claim and send the warnings now due for ``key_ids`` and announce the keys now over their limit;
        returns the warnings sent. Never raises: a failure is logged and the next batch of the key checks again
        (nothing was claimed)."""
        keys = [k for k in key_ids if k]
        if not keys:
            return []
        try:
            near = [_status(r) for r in await self._pool.fetch(_NEAR_LIMIT, keys, self._ratio)]
            if not near:
                return []
            rows = await self._pool.fetch(_CLAIM_WARNINGS, [s.key_id for s in near], self._ratio)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("budget warning check failed: %r", exc)
            return []
        for status in near:
            if not status.allowed:
                await self.announce(status.key_id, "exceeded")
        due = [_status(r) for r in rows]
        for status in due:
            await self._send(status)
        return due

    async def announce(self, key_id: str, state: str) -> None:
        """Tell the edges that ``key_id``'s budget answer changed (best effort)."""
        try:
            await self._publish(BUDGET_STATE_SUBJECT, jsonx.dumps({"keyId": key_id, "state": state}))
        except Exception as exc:  # NATS down or closing: the edges' cached answers expire on their own
            log.warning("budget state not published: %r", exc)

    async def _send(self, status: BudgetStatus) -> None:
        ratio = float(status.spent / status.limit)
        self._warnings.labels(status.period).inc()
        log.warning(
            "budget warning: key %s spent %.4f of %.4f USD (%s)",
            status.key_id,
            status.spent,
            status.limit,
            status.period,
            extra={"key_id": status.key_id, "ratio": round(ratio, 4)},
        )
        payload = {
            "keyId": status.key_id,
            "limit": float(status.limit),
            "spent": float(status.spent),
            "ratio": round(ratio, 6),
            "period": status.period,
            "periodStart": status.period_start.isoformat(),
            "resetAt": status.reset_at.isoformat(),
        }
        try:
            await self._publish(WARNING_SUBJECT, jsonx.dumps(payload))
        except Exception as exc:  # NATS down or closing: the log line and the metric remain
            log.warning("budget warning not published: %r", exc)
