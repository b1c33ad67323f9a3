"""The gRPC adapter: Executor RPCs → :class:`Engine`. Thin on purpose; behaviour lives in the engine.

A complete reply, or the end of a stream, leaves before its attempt's bookkeeping runs
(:meth:`ExecutorServicer.defer`): the health record, the routing statistics and the usage event cost ~50 µs of
the executor's time per request (and held a stream's last event back with the trailers), which the client need
not wait for. Stopping, :meth:`ExecutorServicer.drain` waits for what is still running, so no usage
event is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import grpc

from omniroute.v1 import executor_pb2, executor_pb2_grpc
from omniroute_core.grpcx import UPSTREAM_TIMING_KEY
from omniroute_executor.engine import Engine

__all__ = ["ExecutorServicer"]

log = logging.getLogger(__name__)


class ExecutorServicer(executor_pb2_grpc.ExecutorServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._after: set[asyncio.Task[None]] = set()

    async def Execute(
        self, request: executor_pb2.ExecuteRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.ExecuteReply:
        return await self._engine.execute(request, defer=self.defer)

    async def ExecuteStream(
        self, request: executor_pb2.ExecuteRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        # A cancelled call (client gone) cancels this generator, which closes the upstream response.
        timing = executor_pb2.UpstreamTiming()
        async for chunk in self._engine.execute_stream(request, timing, defer=self.defer):
            yield chunk
        context.set_trailing_metadata(((UPSTREAM_TIMING_KEY, timing.SerializeToString()),))

    def defer(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` once the current loop step ends: the handler returns its reply in this step, and the
        in-loop server writes it (trailers included) before the step ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._after.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._after.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an attempt's bookkeeping failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for the bookkeeping still running (before the usage publisher closes)."""
        while self._after:
            await asyncio.gather(*self._after, return_exceptions=True)
