"""The gRPC adapter: ``omniroute.v1.UsageService`` over :class:`~omniroute_usage.store.UsageStore`."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable
from typing import Any

import asyncpg
import grpc

from omniroute.v1 import common_pb2, usage_pb2, usage_pb2_grpc
from omniroute_core import jsonx
from omniroute_usage import queries
from omniroute_usage.api import BadRequest, NotFound
from omniroute_usage.budget_api import check_budget, get_budgets, post_budget
from omniroute_usage.budgets import BudgetWarner
from omniroute_usage.pricing import load_shipped
from omniroute_usage.pricing_api import get_pricing, set_pricing
from omniroute_usage.pricing_db import PricingSource
from omniroute_usage.store import UsageStore

__all__ = ["SERVICE_NAME", "UsageServicer"]

SERVICE_NAME = "omniroute.v1.UsageService"

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# year 9000: far beyond any stored event, well inside what datetime and timestamptz represent
_MAX_MS = 221_845_392_000_000


_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class UsageServicer(usage_pb2_grpc.UsageServiceServicer):
    """Answers from PostgreSQL. ``pricing`` defaults to the shipped prices plus the stored overrides."""

    def __init__(
        self,
        store: UsageStore,
        pricing: PricingSource | None = None,
        warn_ratio: float = 0.8,
        budgets: BudgetWarner | None = None,
    ) -> None:
        """``budgets`` announces changed budgets to the edges (``None``: they notice when their cache expires)."""
        self._budgets = budgets
        self._store = store
        self._warn_ratio = warn_ratio
        self._pool = store.pool
        self._pricing = pricing or PricingSource(store.pool, load_shipped())

    async def _manage(
        self, context: grpc.aio.ServicerContext[object, object], call: Awaitable[dict[str, Any]]
    ) -> usage_pb2.ManageReply:
        """Run one management call, mapping its errors onto gRPC status codes (see usage.proto)."""
        try:
            body = await call
        except BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except _DB_ERRORS as exc:
            log.warning("usage management query failed: %r", exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "usage database unavailable")
        return usage_pb2.ManageReply(body_json=jsonx.dumps(body))

    async def GetPricing(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """The merged price table (:func:`omniroute_usage.pricing_api.get_pricing`)."""
        return await self._manage(context, get_pricing(self._pricing))

    async def SetPricing(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """Store one price override (:func:`omniroute_usage.pricing_api.set_pricing`)."""
        return await self._manage(context, set_pricing(self._pool, self._pricing, request.body_json))

    async def GetKeyUsage(
        self, request: usage_pb2.KeyUsageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.KeyUsageReply:
        """Requests and summed tokens of ``key_id`` for events at or after ``since_unix_ms`` (0 or negative: all).

        Requests count distinct request ids (fallback attempts of one request are one request); tokens sum over
        every attempt. An unknown key yields zeros. Errors: INVALID_ARGUMENT for an empty ``key_id``;
        UNAVAILABLE when PostgreSQL cannot answer.
        """
        if not request.key_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "key_id is required")
        since = _EPOCH + dt.timedelta(milliseconds=min(max(request.since_unix_ms, 0), _MAX_MS))
        try:
            totals = await self._store.key_usage(request.key_id, since)
        except _DB_ERRORS as exc:
            log.warning("key usage query failed: %r", exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "usage database unavailable")
        return usage_pb2.KeyUsageReply(
            requests=totals.requests,
            usage=common_pb2.Usage(
                input_tokens=totals.input_tokens,
                output_tokens=totals.output_tokens,
                cached_input_tokens=totals.cached_input_tokens,
                cache_creation_tokens=totals.cache_creation_tokens,
                reasoning_tokens=totals.reasoning_tokens,
                total_tokens=totals.total_tokens,
            ),
        )

    async def CheckBudget(
        self, request: usage_pb2.CheckBudgetRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.CheckBudgetReply:
        """Budget status of ``key_id`` (one indexed query). INVALID_ARGUMENT for an empty key id; UNAVAILABLE
        when PostgreSQL cannot answer (the edge decides whether to fail open)."""
        if not request.key_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "key_id is required")
        try:
            return await check_budget(self._pool, request.key_id)
        except _DB_ERRORS as exc:
            log.warning("budget check failed: %r", exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "usage database unavailable")

    async def GetBudgets(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """Every budget's status (:func:`omniroute_usage.budget_api.get_budgets`)."""
        return await self._manage(context, get_budgets(self._pool, self._warn_ratio))

    async def SetBudget(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """Create or replace one key's budget (:func:`omniroute_usage.budget_api.post_budget`)."""
        reply = await self._manage(context, post_budget(self._pool, request.body_json, self._warn_ratio))
        if self._budgets is not None:
            await self._budgets.announce(jsonx.loads(reply.body_json)["budget"]["keyId"], "updated")
        return reply

    async def GetUsageHistory(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """Usage over time from the rollups (:func:`omniroute_usage.queries.usage_history`)."""
        return await self._manage(context, queries.usage_history(self._pool, dict(request.params), _now()))

    async def GetUsageLogs(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """Stored events, filtered and paginated (:func:`omniroute_usage.queries.usage_logs`)."""
        return await self._manage(context, queries.usage_logs(self._pool, dict(request.params), _now()))

    async def GetRequestLogs(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """One entry per request (:func:`omniroute_usage.queries.request_logs`)."""
        return await self._manage(context, queries.request_logs(self._pool, dict(request.params), _now()))

    async def GetConnectionUsage(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """Usage of the connection ``path_id`` (:func:`omniroute_usage.queries.connection_usage`);
        INVALID_ARGUMENT when ``path_id`` is empty."""
        if not request.path_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "connectionId is required")
        call = queries.connection_usage(self._pool, request.path_id, dict(request.params), _now())
        return await self._manage(context, call)

    async def GetTelemetrySummary(
        self, request: usage_pb2.ManageRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> usage_pb2.ManageReply:
        """Latency percentiles per provider (:func:`omniroute_usage.queries.telemetry_summary`)."""
        return await self._manage(context, queries.telemetry_summary(self._pool, dict(request.params), _now()))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
