"""Errors in the client's own format. The hub error is the OpenAI envelope; other formats go through the
translator (the only owner of wire formats), falling back to the hub shape if it cannot be reached."""

from __future__ import annotations

import logging

import grpc

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core.errors import hub_error_body
from omniroute_core.formats import HUB_FORMAT
from omniroute_core.grpcx import call_metadata

__all__ = ["ErrorRenderer"]

log = logging.getLogger(__name__)


class ErrorRenderer:
    def __init__(self, translator: translator_pb2_grpc.TranslatorAsyncStub) -> None:
        self._translator = translator

    async def render(
        self, fmt: common_pb2.Format.ValueType, error: common_pb2.Error, *, in_stream: bool = False
    ) -> bytes:
        if fmt != HUB_FORMAT:
            try:
                reply = await self._translator.RenderError(
                    translator_pb2.RenderErrorIn(target=fmt, error=error, in_stream=in_stream),
                    metadata=call_metadata(),
                    timeout=2.0,
                )
                return reply.body
            except grpc.aio.AioRpcError as exc:
                log.warning("translator unavailable for an error render", extra={"code": str(exc.code())})
        body = hub_error_body(error)
        return b"data: " + body + b"\n\n" if in_stream else body
