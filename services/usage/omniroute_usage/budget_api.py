"""``GET /api/usage/budget`` and ``POST /api/usage/budget`` (served by the dashboard through the usage gRPC
service), and the edge's ``CheckBudget``.

GET answers ``{"budgets": [status...], "total": n}``, one status per key with a budget (see
:meth:`omniroute_usage.budgets.BudgetStatus.to_api`). POST takes ``{"keyId", "limit", "period": "daily" |
"weekly" | "monthly"}`` (``limit`` in USD, a number >= 0) and answers ``{"success": true, "budget": status}``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import asyncpg

from omniroute.v1 import usage_pb2
from omniroute_usage.api import BadRequest, json_body
from omniroute_usage.budgets import PERIODS, budget_status, set_budget

__all__ = ["check_budget", "get_budgets", "post_budget"]

_MAX_LIMIT = 1_000_000_000


async def get_budgets(pool: asyncpg.Pool, warn_ratio: float) -> dict[str, Any]:
    statuses = await budget_status(pool)
    return {"budgets": [s.to_api(warn_ratio) for s in statuses], "total": len(statuses)}


async def post_budget(pool: asyncpg.Pool, body: bytes, warn_ratio: float) -> dict[str, Any]:
    """Validate and store; ``BadRequest`` naming ``keyId``, ``limit`` or ``period`` when invalid."""
    doc = json_body(body)
    key_id = doc.get("keyId")
    if not isinstance(key_id, str) or not key_id.strip() or len(key_id) > 200:
        raise BadRequest("keyId: must be a non-empty string of at most 200 characters", "keyId")
    limit = doc.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
        raise BadRequest("limit: must be a number (USD)", "limit")
    if not 0 <= limit <= _MAX_LIMIT:
        raise BadRequest(f"limit: must be between 0 and {_MAX_LIMIT}", "limit")
    period = doc.get("period", "monthly")
    if period not in PERIODS:
        raise BadRequest("period: must be one of daily, weekly, monthly", "period")
    status = await set_budget(pool, key_id.strip(), Decimal(str(limit)), period)
    return {"success": True, "budget": status.to_api(warn_ratio)}


async def check_budget(pool: asyncpg.Pool, key_id: str) -> usage_pb2.CheckBudgetReply:
    """The edge's admission answer for ``key_id`` (allowed, with ``has_budget`` false, when none is set)."""
    found = await budget_status(pool, key_id)
    if not found:
        return usage_pb2.CheckBudgetReply(allowed=True, has_budget=False)
    (status,) = found
    return usage_pb2.CheckBudgetReply(
        allowed=status.allowed,
        has_budget=True,
        limit_usd=float(status.limit),
        spent_usd=float(status.spent),
        remaining_usd=float(status.remaining),
        reset_at_unix_ms=int(status.reset_at.timestamp() * 1000),
        period=status.period,
    )
