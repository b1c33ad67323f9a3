"""The gRPC adapter: Executor RPCs → :class:`Engine`. Thin on purpose; behaviour lives in the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from omniroute.v1 import executor_pb2, executor_pb2_grpc
from omniroute_core.grpcx import UPSTREAM_TIMING_KEY
from omniroute_executor.engine import Engine

__all__ = ["ExecutorServicer"]


class ExecutorServicer(executor_pb2_grpc.ExecutorServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def Execute(
        self, request: executor_pb2.ExecuteRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> executor_pb2.ExecuteReply:
        return await self._engine.execute(request)

    async def ExecuteStream(
        self, request: executor_pb2.ExecuteRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        # A cancelled call (client gone) cancels this generator, which closes the upstream response.
        timing = executor_pb2.UpstreamTiming()
        async for chunk in self._engine.execute_stream(request, timing):
            yield chunk
        context.set_trailing_metadata(((UPSTREAM_TIMING_KEY, timing.SerializeToString()),))
