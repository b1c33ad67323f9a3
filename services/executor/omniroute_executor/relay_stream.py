"""Relaying one upstream stream to the client, same format (bytes observed) or translated (through the
translator's bidirectional stream).

Contract: the first chunk yielded carries status and headers plus the first bytes for the client. If the attempt
fails *before* that chunk (an error event first, a broken or truncated stream with nothing sent), the relay
raises :class:`EarlyFailure` instead of yielding, so the caller can fall back to another target. After it, a
failure becomes the client format's in-stream error event, and the stream ends.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from omniroute.v1 import common_pb2, executor_pb2, translator_pb2
from omniroute_core.errors import hub_error
from omniroute_executor.attempts import Attempt
from omniroute_executor.passthrough import StreamObserver
from omniroute_executor.prepare import Prepared
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import UpstreamError, UpstreamResponse, UpstreamTimeout

__all__ = ["SSE", "EarlyFailure", "StreamRelay", "relayed_headers"]

SSE = "text/event-stream"
_RELAYED_HEADERS = ("x-request-id", "openai-processing-ms", "retry-after")


class EarlyFailure(Exception):
    """The stream failed before anything reached the client; ``error`` says how."""

    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


def relayed_headers(resp: UpstreamResponse) -> dict[str, str]:
    return {name: resp.headers[name] for name in _RELAYED_HEADERS if name in resp.headers}


def _truncated() -> common_pb2.Error:
    return hub_error(502, "provider stream ended without its terminal event", type_="upstream_error")


class StreamRelay:
    def __init__(self, translator: TranslatorClient, clock: Callable[[], float]) -> None:
        self._translator = translator
        self._clock = clock

    def relay(
        self, meta: common_pb2.RequestMeta, prepared: Prepared, resp: UpstreamResponse, attempt: Attempt
    ) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        if prepared.passthrough is not None:
            return self._same(meta, prepared, resp, attempt)
        return self._translated(meta, prepared, resp, attempt)

    def _first(self, attempt: Attempt) -> None:
        attempt.ttft_ms = int((self._clock() - attempt.started) * 1000)

    async def _same(
        self, meta: common_pb2.RequestMeta, prepared: Prepared, resp: UpstreamResponse, attempt: Attempt
    ) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        assert prepared.passthrough is not None
        observer = StreamObserver(prepared.passthrough, drop_usage_event=prepared.drop_usage_event)
        head: executor_pb2.ExecuteChunk | None = executor_pb2.ExecuteChunk(
            status=resp.status, content_type=SSE, headers=relayed_headers(resp)
        )
        failure: common_pb2.Error | None = None
        try:
            async for data in resp.iter_chunks():
                out = observer.feed(data)
                if not out:
                    continue
                if head is not None:
                    self._first(attempt)
                    head.data = out
                    yield head
                    head = None
                else:
                    yield executor_pb2.ExecuteChunk(data=out)
            tail = observer.finish()
        except UpstreamTimeout as exc:
            failure, tail = hub_error(504, f"provider stopped sending: {exc}"), b""
        except UpstreamError as exc:
            failure, tail = hub_error(502, str(exc)), b""
        if failure is None and not observer.complete:
            failure = _truncated()
        if observer.usage is not None:
            attempt.usage = observer.usage
        attempt.status = failure.status if failure else resp.status
        attempt.error_type = failure.type if failure else ""
        if head is not None:
            if failure is not None:
                raise EarlyFailure(failure)
            head.data = tail
            yield head
            return
        if tail:
            yield executor_pb2.ExecuteChunk(data=tail)
        if failure is not None:
            yield executor_pb2.ExecuteChunk(
                data=await self._translator.render_error(meta.client_format, failure, in_stream=True)
            )

    async def _translated(
        self, meta: common_pb2.RequestMeta, prepared: Prepared, resp: UpstreamResponse, attempt: Attempt
    ) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        setup = translator_pb2.StreamSetup(
            source=prepared.target.provider.format,
            target=meta.client_format,
            model=meta.model,
            request_id=meta.request_id,
            created_unix=int(time.time()),
            include_usage=prepared.client_wants_usage,
        )
        upstream_failure: list[common_pb2.Error] = []

        async def requests() -> AsyncIterator[translator_pb2.StreamIn]:
            yield translator_pb2.StreamIn(setup=setup)
            try:
                async for data in resp.iter_chunks():
                    yield translator_pb2.StreamIn(data=data)
            except UpstreamTimeout as exc:
                upstream_failure.append(hub_error(504, f"provider stopped sending: {exc}"))
            except UpstreamError as exc:
                upstream_failure.append(hub_error(502, str(exc)))

        head: executor_pb2.ExecuteChunk | None = executor_pb2.ExecuteChunk(
            status=resp.status, content_type=SSE, headers=relayed_headers(resp)
        )
        complete = False
        async for out in self._translator.stream(requests()):
            if out.done:
                complete = out.complete
                attempt.usage = out.usage
            if out.HasField("error") and head is not None and not out.data:
                # the provider (or the translator) refused before any content
                attempt.status, attempt.error_type = out.error.status or 502, out.error.type
                raise EarlyFailure(out.error)
            if not out.data:
                continue
            if head is not None:
                self._first(attempt)
                head.content_type = out.content_type or SSE
                head.data = out.data
                yield head
                head = None
            else:
                yield executor_pb2.ExecuteChunk(data=out.data)
        failure = upstream_failure[0] if upstream_failure else None
        if failure is None and not complete:
            failure = _truncated()
        attempt.status = failure.status if failure else resp.status
        attempt.error_type = failure.type if failure else ""
        if failure is None:
            if head is not None:
                yield head
            return
        if head is not None:
            raise EarlyFailure(failure)
        yield executor_pb2.ExecuteChunk(
            data=await self._translator.render_error(meta.client_format, failure, in_stream=True)
        )
