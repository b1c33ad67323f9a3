"""One request, end to end: resolve, prepare, call the provider, relay, meter.

Errors a client can see are rendered in its own format (through :class:`TranslatorClient`). Every attempt
publishes one usage event, successful or not.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from omniroute.v1 import common_pb2, executor_pb2, translator_pb2, usage_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_executor.catalog import Catalog
from omniroute_executor.passthrough import StreamObserver, usage_from
from omniroute_executor.prepare import Credentials, Prepared, prepare
from omniroute_executor.resolve import ResolveError, resolve
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream, UpstreamError, UpstreamResponse, UpstreamTimeout
from omniroute_executor.usage_events import UsagePublisher

__all__ = ["Engine"]

log = logging.getLogger(__name__)
JSON = "application/json"
SSE = "text/event-stream"
_OPERATION_PATH = {common_pb2.OPERATION_CHAT: "chat"}
_RELAYED_HEADERS = ("x-request-id", "openai-processing-ms", "retry-after")


@dataclass(slots=True)
class _Attempt:
    """What one attempt did, for its usage event."""

    started: float
    provider: str = ""
    connection_id: str = ""
    model: str = ""
    status: int = 0
    error_type: str = ""
    ttft_ms: int = 0
    usage: common_pb2.Usage = field(default_factory=common_pb2.Usage)


class Engine:
    def __init__(
        self,
        *,
        catalog: Catalog,
        snapshot: Callable[[], ConfigSnapshot],
        credentials: Credentials,
        upstream: Upstream,
        translator: TranslatorClient,
        publisher: UsagePublisher | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._snapshot = snapshot
        self._credentials = credentials
        self._upstream = upstream
        self._translator = translator
        self._publisher = publisher
        self._clock = clock

    # -- non-streaming -------------------------------------------------------------------------------------

    async def execute(self, req: executor_pb2.ExecuteRequest) -> executor_pb2.ExecuteReply:
        meta = req.meta
        attempt = _Attempt(started=self._clock())
        try:
            prepared = await self._prepare(meta, req.body, attempt)
            resp = await self._send(prepared)
            try:
                body = await resp.read()
            finally:
                resp.close()
            attempt.ttft_ms = self._elapsed_ms(attempt)
            attempt.status = resp.status
            if resp.status >= 400:
                attempt.error_type = "upstream_status"
                return await self._upstream_error_reply(meta, prepared, resp, body)
            return await self._success_reply(meta, prepared, resp, body, attempt)
        except ResolveError as exc:
            return await self._error_reply(meta, exc.error, attempt)
        except UpstreamTimeout as exc:
            return await self._error_reply(meta, hub_error(504, f"provider timed out: {exc}"), attempt)
        except UpstreamError as exc:
            return await self._error_reply(meta, hub_error(502, f"provider unreachable: {exc}"), attempt)
        finally:
            self._publish(meta, attempt)

    async def _success_reply(
        self,
        meta: common_pb2.RequestMeta,
        prepared: Prepared,
        resp: UpstreamResponse,
        body: bytes,
        attempt: _Attempt,
    ) -> executor_pb2.ExecuteReply:
        if prepared.passthrough is not None:
            try:
                usage = usage_from(prepared.passthrough, jsonx.loads(body))
            except jsonx.JSONDecodeError:
                usage = None
            out = body
        else:
            translated = await self._translator.response(
                translator_pb2.TranslateResponseIn(
                    source=prepared.target.provider.format,
                    target=meta.client_format,
                    body=body,
                    model=meta.model,
                    request_id=meta.request_id,
                    created_unix=int(time.time()),
                )
            )
            if translated.HasField("error"):
                attempt.status, attempt.error_type = translated.error.status, "translation"
                return await self._error_reply(meta, translated.error, attempt)
            usage, out = translated.usage, translated.body
        if usage is not None:
            attempt.usage = usage
        return executor_pb2.ExecuteReply(
            status=resp.status,
            content_type=JSON,
            body=out,
            headers=_relayed(resp),
            usage=attempt.usage,
            provider=prepared.target.provider.id,
            model=prepared.target.model,
        )

    async def _upstream_error_reply(
        self, meta: common_pb2.RequestMeta, prepared: Prepared, resp: UpstreamResponse, body: bytes
    ) -> executor_pb2.ExecuteReply:
        """A provider's own error. Same format: relayed as sent, when it is that format's JSON envelope."""
        if prepared.passthrough is not None and _is_json_object(body):
            return executor_pb2.ExecuteReply(
                status=resp.status,
                content_type=JSON,
                body=body,
                headers=_relayed(resp),
                provider=prepared.target.provider.id,
            )
        snippet = body[:300].decode("utf-8", "replace")
        err = hub_error(
            resp.status,
            f"provider {prepared.target.provider.id!r} returned HTTP {resp.status}: {snippet}",
            type_="upstream_error",
            retry_after_ms=_retry_after_ms(resp),
        )
        rendered = await self._translator.render_error(meta.client_format, err)
        return executor_pb2.ExecuteReply(status=resp.status, content_type=JSON, body=rendered, headers=_relayed(resp))

    async def _error_reply(
        self, meta: common_pb2.RequestMeta, error: common_pb2.Error, attempt: _Attempt
    ) -> executor_pb2.ExecuteReply:
        attempt.status = attempt.status or error.status
        attempt.error_type = attempt.error_type or error.type
        body = await self._translator.render_error(meta.client_format, error)
        headers = {"retry-after": str(max(1, error.retry_after_ms // 1000))} if error.retry_after_ms else {}
        return executor_pb2.ExecuteReply(status=error.status, content_type=JSON, body=body, headers=headers)

    # -- streaming -----------------------------------------------------------------------------------------

    async def execute_stream(self, req: executor_pb2.ExecuteRequest) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        """First chunk: status and headers (and, on failure before any content, the whole error body)."""
        meta = req.meta
        attempt = _Attempt(started=self._clock())
        try:
            try:
                prepared = await self._prepare(meta, req.body, attempt)
                resp = await self._send(prepared)
            except ResolveError as exc:
                yield _as_chunk(await self._error_reply(meta, exc.error, attempt))
                return
            except UpstreamTimeout as exc:
                yield _as_chunk(await self._error_reply(meta, hub_error(504, f"provider timed out: {exc}"), attempt))
                return
            except UpstreamError as exc:
                err = hub_error(502, f"provider unreachable: {exc}")
                yield _as_chunk(await self._error_reply(meta, err, attempt))
                return
            try:
                if resp.status >= 400:
                    body = await resp.read()
                    attempt.status, attempt.error_type = resp.status, "upstream_status"
                    yield _as_chunk(await self._upstream_error_reply(meta, prepared, resp, body))
                    return
                relay = self._relay_same if prepared.passthrough is not None else self._relay_translated
                async for chunk in relay(meta, prepared, resp, attempt):
                    yield chunk
            finally:
                resp.close()
        finally:
            self._publish(meta, attempt)

    async def _relay_same(
        self, meta: common_pb2.RequestMeta, prepared: Prepared, resp: UpstreamResponse, attempt: _Attempt
    ) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        assert prepared.passthrough is not None
        observer = StreamObserver(prepared.passthrough, drop_usage_event=prepared.drop_usage_event)
        head: executor_pb2.ExecuteChunk | None = executor_pb2.ExecuteChunk(
            status=resp.status, content_type=SSE, headers=_relayed(resp)
        )
        failure: common_pb2.Error | None = None
        try:
            async for data in resp.iter_chunks():
                out = observer.feed(data)
                if not out:
                    continue
                if head is not None:
                    attempt.ttft_ms = self._elapsed_ms(attempt)
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
            failure = hub_error(502, "provider stream ended without its terminal event", type_="upstream_error")
        if observer.usage is not None:
            attempt.usage = observer.usage
        attempt.status = failure.status if failure else resp.status
        attempt.error_type = failure.type if failure else ""
        if head is not None:
            # nothing reached the client yet: the failure is an ordinary error reply
            if failure is not None:
                yield _as_chunk(await self._error_reply(meta, failure, attempt))
                return
            head.data = tail
            yield head
            return
        if tail:
            yield executor_pb2.ExecuteChunk(data=tail)
        if failure is not None:
            yield executor_pb2.ExecuteChunk(
                data=await self._translator.render_error(meta.client_format, failure, in_stream=True)
            )

    async def _relay_translated(
        self, meta: common_pb2.RequestMeta, prepared: Prepared, resp: UpstreamResponse, attempt: _Attempt
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
            status=resp.status, content_type=SSE, headers=_relayed(resp)
        )
        complete = False
        async for out in self._translator.stream(requests()):
            if out.done:
                complete = out.complete
                attempt.usage = out.usage
            if out.HasField("error") and head is not None and not out.data:
                # the provider (or the translator) refused before any content: an ordinary error reply
                attempt.status, attempt.error_type = out.error.status or 502, out.error.type
                yield _as_chunk(await self._error_reply(meta, out.error, attempt))
                return
            if not out.data:
                continue
            if head is not None:
                attempt.ttft_ms = self._elapsed_ms(attempt)
                head.content_type = out.content_type or SSE
                head.data = out.data
                yield head
                head = None
            else:
                yield executor_pb2.ExecuteChunk(data=out.data)
        failure = upstream_failure[0] if upstream_failure else None
        if failure is None and not complete:
            failure = hub_error(502, "provider stream ended without its terminal event", type_="upstream_error")
        attempt.status = failure.status if failure else resp.status
        attempt.error_type = failure.type if failure else ""
        if failure is None:
            if head is not None:
                yield head
            return
        if head is not None:
            yield _as_chunk(await self._error_reply(meta, failure, attempt))
        else:
            yield executor_pb2.ExecuteChunk(
                data=await self._translator.render_error(meta.client_format, failure, in_stream=True)
            )

    # -- shared --------------------------------------------------------------------------------------------

    async def _prepare(self, meta: common_pb2.RequestMeta, body: bytes, attempt: _Attempt) -> Prepared:
        try:
            parsed: Any = jsonx.loads(body)
        except jsonx.JSONDecodeError as exc:
            raise ResolveError(hub_error(400, f"request body is not valid JSON: {exc}")) from exc
        if not isinstance(parsed, dict):
            raise ResolveError(hub_error(400, "request body must be a JSON object"))
        target = resolve(meta.model, self._catalog, self._snapshot())
        attempt.provider, attempt.connection_id, attempt.model = (
            target.provider.id,
            target.connection.id,
            target.model,
        )
        operation = _OPERATION_PATH.get(meta.operation)
        if operation is None:
            raise ResolveError(hub_error(400, "this operation is not supported yet"))
        return await prepare(target, meta, body, parsed, self._credentials, self._translator, operation)

    async def _send(self, prepared: Prepared) -> UpstreamResponse:
        return await self._upstream.post(prepared.target.provider.id, prepared.url, prepared.headers, prepared.body)

    def _elapsed_ms(self, attempt: _Attempt) -> int:
        return int((self._clock() - attempt.started) * 1000)

    def _publish(self, meta: common_pb2.RequestMeta, attempt: _Attempt) -> None:
        if self._publisher is None:
            return
        self._publisher.emit(
            usage_pb2.UsageEvent(
                event_id=uuid.uuid4().hex,
                request_id=meta.request_id,
                ts_unix_ms=int(time.time() * 1000),
                key_id=meta.key_id,
                provider=attempt.provider,
                model=attempt.model,
                requested_model=meta.model,
                connection_id=attempt.connection_id,
                status=attempt.status,
                latency_ms=self._elapsed_ms(attempt),
                ttft_ms=attempt.ttft_ms,
                usage=attempt.usage,
                client_format=meta.client_format,
                stream=meta.stream,
                attempt=1,
                error_type=attempt.error_type,
                endpoint=meta.endpoint,
            )
        )


def _as_chunk(reply: executor_pb2.ExecuteReply) -> executor_pb2.ExecuteChunk:
    return executor_pb2.ExecuteChunk(
        status=reply.status, content_type=reply.content_type, headers=reply.headers, data=reply.body
    )


def _relayed(resp: UpstreamResponse) -> dict[str, str]:
    return {name: resp.headers[name] for name in _RELAYED_HEADERS if name in resp.headers}


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(jsonx.loads(body), dict)
    except jsonx.JSONDecodeError:
        return False


def _retry_after_ms(resp: UpstreamResponse) -> int:
    value = resp.headers.get("retry-after", "")
    try:
        return int(float(value) * 1000)
    except ValueError:
        return 0
