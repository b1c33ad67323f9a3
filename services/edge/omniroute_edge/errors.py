"""Errors in the client's own format. The hub error is the OpenAI envelope; other formats go through the
translator (the only owner of wire formats), falling back to the hub shape if it cannot be reached."""

from __future__ import annotations

from omniroute.v1 import common_pb2, translator_pb2_grpc
from omniroute_core.errors import render_error

__all__ = ["ErrorRenderer"]


class ErrorRenderer:
    """Binds the translator channel for the relay and the guards (see :func:`omniroute_core.errors.render_error`)."""

    def __init__(self, translator: translator_pb2_grpc.TranslatorAsyncStub) -> None:
        self._translator = translator

    async def render(
        self, fmt: common_pb2.Format.ValueType, error: common_pb2.Error, *, in_stream: bool = False
    ) -> bytes:
        return await render_error(self._translator, fmt, error, in_stream=in_stream)
