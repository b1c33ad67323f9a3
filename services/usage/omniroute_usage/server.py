"""The gRPC adapter: ``omniroute.v1.UsageService`` over :class:`~omniroute_usage.store.UsageStore`."""

from __future__ import annotations

import datetime as dt
import logging

import asyncpg
import grpc

from omniroute.v1 import common_pb2, usage_pb2, usage_pb2_grpc
from omniroute_usage.store import UsageStore

__all__ = ["SERVICE_NAME", "UsageServicer"]

SERVICE_NAME = "omniroute.v1.UsageService"

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# year 9000: far beyond any stored event, well inside what datetime and timestamptz represent
_MAX_MS = 221_845_392_000_000


class UsageServicer(usage_pb2_grpc.UsageServiceServicer):
    """Answers from PostgreSQL; one query per call."""

    def __init__(self, store: UsageStore) -> None:
        self._store = store

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
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
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
