"""Client of the translator service, used whenever client and provider formats differ, and for errors.

Errors for a hub-native client (OpenAI Chat) are rendered here without a call, since the hub error *is* that
format's envelope; if the translator cannot be reached, an error is still returned in the hub's shape rather
than lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core.errors import render_error
from omniroute_core.grpcx import call_metadata

__all__ = ["TranslatorClient"]


class TranslatorClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = translator_pb2_grpc.TranslatorStub(channel)

    async def request(
        self,
        source: common_pb2.Format.ValueType,
        target: common_pb2.Format.ValueType,
        body: bytes,
        model: str,
        *,
        stream: bool,
        policy: translator_pb2.RequestPolicy | None = None,
    ) -> translator_pb2.TranslateRequestOut:
        return await self._stub.TranslateRequest(
            translator_pb2.TranslateRequestIn(
                source=source, target=target, body=body, model=model, stream=stream, policy=policy
            ),
            metadata=call_metadata(),
        )

    async def response(self, msg: translator_pb2.TranslateResponseIn) -> translator_pb2.TranslateResponseOut:
        return await self._stub.TranslateResponse(msg, metadata=call_metadata())

    async def count_tokens(self, msg: translator_pb2.CountTokensIn) -> translator_pb2.CountTokensOut:
        return await self._stub.CountTokens(msg, metadata=call_metadata())

    async def render_models(self, msg: translator_pb2.RenderModelsIn) -> translator_pb2.RenderModelsOut:
        return await self._stub.RenderModels(msg, metadata=call_metadata())

    def stream(self, requests: AsyncIterator[translator_pb2.StreamIn]) -> AsyncIterator[translator_pb2.StreamOut]:
        call = self._stub.TranslateStream(requests, metadata=call_metadata())
        return call.__aiter__()

    async def render_error(
        self, target: common_pb2.Format.ValueType, error: common_pb2.Error, *, in_stream: bool = False
    ) -> bytes:
        """``error`` in the client's format; a mid-stream event when ``in_stream``."""
        return await render_error(self._stub, target, error, in_stream=in_stream)
