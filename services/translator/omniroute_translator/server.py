"""The gRPC adapter: ``omniroute.v1.Translator`` over :mod:`omniroute_translator.pipeline`.

Caller mistakes (unsupported pair, invalid body, a stream without setup) come back as an ``Error`` inside the
reply, never as a gRPC status: only a bug in a codec aborts a call, as ``INTERNAL``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core.errors import hub_error
from omniroute_core.formats import format_name
from omniroute_translator import pipeline
from omniroute_translator.metrics import TranslatorMetrics
from omniroute_translator.pipeline import CodecTable
from omniroute_translator.tokens import Tokenizers, count_tokens

__all__ = ["SERVICE_NAME", "TranslatorService"]

log = logging.getLogger(__name__)

SERVICE_NAME = "omniroute.v1.Translator"


class TranslatorService(translator_pb2_grpc.TranslatorServicer):
    """Stateless apart from its codec table and metrics; one instance serves every call."""

    def __init__(
        self, codecs: CodecTable, metrics: TranslatorMetrics | None = None, tokenizers: Tokenizers | None = None
    ) -> None:
        self._codecs = codecs
        self._metrics = metrics
        self._tokenizers = tokenizers or Tokenizers()

    def _observe(
        self,
        rpc: str,
        source: common_pb2.Format.ValueType,
        target: common_pb2.Format.ValueType,
        outcome: str,
        seconds: float,
    ) -> None:
        if self._metrics is not None:
            self._metrics.observe(rpc, format_name(source), format_name(target), outcome, seconds)

    async def TranslateRequest(
        self, request: translator_pb2.TranslateRequestIn, context: Any
    ) -> translator_pb2.TranslateRequestOut:
        start = time.perf_counter()
        reply = pipeline.translate_request(self._codecs, request)
        outcome = "error" if reply.HasField("error") else "ok"
        self._observe("TranslateRequest", request.source, request.target, outcome, time.perf_counter() - start)
        return reply

    async def TranslateResponse(
        self, request: translator_pb2.TranslateResponseIn, context: Any
    ) -> translator_pb2.TranslateResponseOut:
        start = time.perf_counter()
        reply = pipeline.translate_response(self._codecs, request)
        outcome = "error" if reply.HasField("error") else "ok"
        self._observe("TranslateResponse", request.source, request.target, outcome, time.perf_counter() - start)
        return reply

    async def RenderError(self, request: translator_pb2.RenderErrorIn, context: Any) -> translator_pb2.RenderErrorOut:
        start = time.perf_counter()
        reply = pipeline.render_error(self._codecs, request)
        self._observe("RenderError", common_pb2.FORMAT_UNSPECIFIED, request.target, "ok", time.perf_counter() - start)
        return reply

    async def RenderModels(
        self, request: translator_pb2.RenderModelsIn, context: Any
    ) -> translator_pb2.RenderModelsOut:
        start = time.perf_counter()
        reply = pipeline.render_models(request)
        outcome = "error" if reply.HasField("error") else "ok"
        self._observe(
            "RenderModels", common_pb2.FORMAT_UNSPECIFIED, request.target, outcome, time.perf_counter() - start
        )
        return reply

    async def CountTokens(self, request: translator_pb2.CountTokensIn, context: Any) -> translator_pb2.CountTokensOut:
        """Counted in a worker thread: tokenizing a long prompt (or loading a table on first use) must not stall
        the event loop that serves every other call."""
        start = time.perf_counter()
        reply = await asyncio.to_thread(count_tokens, self._codecs, self._tokenizers, request)
        outcome = "error" if reply.HasField("error") else "ok"
        self._observe("CountTokens", request.source, request.source, outcome, time.perf_counter() - start)
        return reply

    async def TranslateStream(
        self, request_iterator: AsyncIterator[translator_pb2.StreamIn], context: Any
    ) -> AsyncIterator[translator_pb2.StreamOut]:
        """First message: ``setup``; then byte batches. See :class:`~omniroute_translator.pipeline.StreamSession`
        for the reply semantics. A missing setup or an unsupported pair is a single ``done`` reply with an
        ``Error``; the rest of the input is then read and discarded, because a call that ends while its client
        is still writing fails on the client's side with INTERNAL and the error reply would be lost."""
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if first.WhichOneof("kind") != "setup":
            yield translator_pb2.StreamOut(done=True, error=hub_error(400, "The first stream message must be setup."))
            await _drain(request_iterator)
            return
        setup = first.setup
        session = pipeline.open_stream(self._codecs, setup)
        if isinstance(session, common_pb2.Error):
            self._observe("TranslateStream", setup.source, setup.target, "error", 0.0)
            yield translator_pb2.StreamOut(done=True, error=session)
            await _drain(request_iterator)
            return
        spent, received, sent, outcome = 0.0, 0, 0, "ok"
        try:
            async for message in request_iterator:
                if message.WhichOneof("kind") != "data":
                    continue  # a repeated setup carries nothing new
                start = time.perf_counter()
                reply = session.feed(message.data)
                spent += time.perf_counter() - start
                received += len(message.data)
                if reply is not None:
                    if reply.HasField("error"):
                        outcome = "error"
                    sent += len(reply.data)
                    yield reply
            start = time.perf_counter()
            last = session.finish()
            spent += time.perf_counter() - start
            sent += len(last.data)
            if last.HasField("error"):
                outcome = "error"
            yield last
        except Exception:
            outcome = "failed"
            log.exception("stream translation failed", extra={"source": format_name(setup.source)})
            raise
        finally:
            self._observe("TranslateStream", setup.source, setup.target, outcome, spent)
            if self._metrics is not None:
                self._metrics.stream(received, sent)


async def _drain(request_iterator: AsyncIterator[translator_pb2.StreamIn]) -> None:
    async for _ in request_iterator:
        pass


def add_to_server(service: TranslatorService, server: grpc.aio.Server) -> None:
    translator_pb2_grpc.add_TranslatorServicer_to_server(service, server)
