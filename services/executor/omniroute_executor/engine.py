"""One request, end to end: plan, then attempts (retries, fallbacks) until one succeeds, relayed and metered.

The plan (:mod:`omniroute_executor.routing`) lists targets; targets whose breaker is open or that cool down are
left out, and a half-open one admits one probe. The loop follows :mod:`omniroute_executor.attempts`' rules. Each
attempt publishes its own usage event (attempt number, combo, connection). When every attempt failed, the client
gets the last attempt's answer with the earliest ``Retry-After`` seen; when no target could even be tried, 503
with ``Retry-After`` until the first one is usable again. A stream can fall back until its first bytes reached
the client. Errors a client can see are rendered in its own format (through :class:`TranslatorClient`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

from omniroute.v1 import common_pb2, executor_pb2, translator_pb2, usage_pb2
from omniroute_core import jsonx
from omniroute_core.catalog import Catalog
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_executor.attempts import Attempt, Kind, Outcome, classify, retry_after_ms
from omniroute_executor.count_tokens import count_tokens
from omniroute_executor.passthrough import usage_from
from omniroute_executor.prepare import Credentials, Prepared, prepare
from omniroute_executor.relay_stream import EarlyFailure, StreamRelay, relayed_headers
from omniroute_executor.resilience import HealthStore, Profile, profiles_from
from omniroute_executor.resolve import ResolveError, Target
from omniroute_executor.routing import Plan, RoutingStats, build_plan
from omniroute_executor.timing import UpstreamClock
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream, UpstreamError, UpstreamResponse, UpstreamTimeout

__all__ = ["Engine", "EventSink"]

log = logging.getLogger(__name__)
JSON = "application/json"
_OPERATION_PATH = {common_pb2.OPERATION_CHAT: "chat"}


class EventSink(Protocol):
    """Where usage events go (:class:`~omniroute_executor.usage_events.UsagePublisher` in production)."""

    def emit(self, event: usage_pb2.UsageEvent) -> None: ...


@dataclass(slots=True)
class _Request:
    meta: common_pb2.RequestMeta
    body: bytes
    parsed: dict[str, Any]
    plan: Plan
    profiles: dict[str, Profile]
    upstream: UpstreamClock  # time spent waiting on providers (the edge's overhead histogram subtracts it)


class Engine:
    def __init__(
        self,
        *,
        catalog: Catalog,
        snapshot: Callable[[], ConfigSnapshot],
        credentials: Credentials,
        upstream: Upstream,
        translator: TranslatorClient,
        publisher: EventSink | None,
        health: HealthStore | None = None,
        stats: RoutingStats | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._snapshot = snapshot
        self._credentials = credentials
        self._upstream = upstream
        self._translator = translator
        self._publisher = publisher
        self.health = health or HealthStore(None)
        self.stats = stats or RoutingStats()
        self._rng = rng or random.Random()
        self._clock = clock
        self._relay = StreamRelay(translator, clock)

    # -- non-streaming -------------------------------------------------------------------------------------

    async def execute(self, req: executor_pb2.ExecuteRequest) -> executor_pb2.ExecuteReply:
        meta = req.meta
        if meta.operation == common_pb2.OPERATION_COUNT_TOKENS:
            return await self._count_tokens(meta, req.body)
        try:
            request = await self._begin(meta, req.body)
        except ResolveError as exc:
            attempt = Attempt(started=self._clock())
            try:
                return await self._error_reply(meta, exc.error, attempt)
            finally:
                self._publish(meta, attempt)
        outcomes: list[Outcome] = []
        async with aclosing(self._attempts(request, outcomes)) as attempts:
            async for target, attempt in attempts:
                try:
                    outcome = await self._try_once(request, target, attempt)
                except BaseException:
                    # the client left (cancellation) or a bug: the attempt is still metered
                    attempt.error_type = attempt.error_type or "client_gone"
                    await self._settle(request, target, attempt, _GONE, outcomes)
                    raise
                finally:
                    request.upstream.stop()
                await self._settle(request, target, attempt, outcome, outcomes)
                if outcome.kind in (Kind.OK, Kind.STOP):
                    return _timed(outcome.reply, request.upstream)
        return _timed(await self._final(request, outcomes), request.upstream)

    async def _try_once(self, request: _Request, target: Target, attempt: Attempt) -> Outcome:
        meta = request.meta
        try:
            prepared = await self._prepare(request, target)
        except ResolveError as exc:
            return Outcome(Kind.NEXT, await self._error_reply(meta, exc.error, attempt))
        try:
            async with asyncio.timeout(request.plan.config.timeout_s or None):
                resp = await self._send(prepared, request.upstream)
                try:
                    body = await resp.read()
                finally:
                    resp.close()
        except (TimeoutError, UpstreamTimeout) as exc:
            err = hub_error(504, f"provider timed out: {exc or 'per-target timeout'}")
            return Outcome(Kind.RETRY, await self._error_reply(meta, err, attempt), counts_as_failure=True)
        except UpstreamError as exc:
            err = hub_error(502, f"provider unreachable: {exc}")
            return Outcome(Kind.RETRY, await self._error_reply(meta, err, attempt), counts_as_failure=True)
        attempt.ttft_ms = self._elapsed_ms(attempt)
        attempt.status = resp.status
        if resp.status >= 400:
            attempt.error_type = "upstream_status"
            return await self._upstream_failure(meta, prepared, resp, body)
        reply = await self._success_reply(meta, prepared, resp, body, attempt)
        return Outcome(Kind.OK if reply.status < 400 else Kind.NEXT, reply)

    async def _success_reply(
        self, meta: common_pb2.RequestMeta, prepared: Prepared, resp: UpstreamResponse, body: bytes, attempt: Attempt
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
            headers=relayed_headers(resp),
            usage=attempt.usage,
            provider=prepared.target.provider.id,
            model=prepared.target.model,
        )

    async def _upstream_failure(
        self, meta: common_pb2.RequestMeta, prepared: Prepared, resp: UpstreamResponse, body: bytes
    ) -> Outcome:
        """A provider's own error status. Same format: relayed as sent, when it is that format's JSON envelope."""
        wait = retry_after_ms(resp.headers)
        kind = classify(resp.status)
        outcome = Outcome(
            kind,
            executor_pb2.ExecuteReply(),
            retry_after_ms=wait,
            rate_limited=resp.status == 429,
            counts_as_failure=kind is Kind.RETRY,
        )
        if prepared.passthrough is not None and _is_json_object(body):
            outcome.reply = executor_pb2.ExecuteReply(
                status=resp.status,
                content_type=JSON,
                body=body,
                headers=relayed_headers(resp),
                provider=prepared.target.provider.id,
            )
            return outcome
        snippet = body[:300].decode("utf-8", "replace")
        err = hub_error(
            resp.status,
            f"provider {prepared.target.provider.id!r} returned HTTP {resp.status}: {snippet}",
            type_="upstream_error",
            retry_after_ms=wait,
        )
        rendered = await self._translator.render_error(meta.client_format, err)
        outcome.reply = executor_pb2.ExecuteReply(
            status=resp.status, content_type=JSON, body=rendered, headers=relayed_headers(resp)
        )
        return outcome

    async def _error_reply(
        self, meta: common_pb2.RequestMeta, error: common_pb2.Error, attempt: Attempt
    ) -> executor_pb2.ExecuteReply:
        attempt.status = attempt.status or error.status
        attempt.error_type = attempt.error_type or error.type
        body = await self._translator.render_error(meta.client_format, error)
        headers = {"retry-after": str(max(1, -(-error.retry_after_ms // 1000)))} if error.retry_after_ms else {}
        return executor_pb2.ExecuteReply(status=error.status, content_type=JSON, body=body, headers=headers)

    # -- streaming -----------------------------------------------------------------------------------------

    async def execute_stream(
        self, req: executor_pb2.ExecuteRequest, timing: executor_pb2.UpstreamTiming | None = None
    ) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        """First chunk: status and headers (and, on failure before any content, the whole error body).
        ``timing`` is kept up to date with the time spent waiting on providers (for the trailing metadata)."""
        meta = req.meta
        if meta.operation == common_pb2.OPERATION_COUNT_TOKENS:  # a count never streams: one chunk, the reply
            yield _as_chunk(await self._count_tokens(meta, req.body))
            return
        try:
            request = await self._begin(meta, req.body)
        except ResolveError as exc:
            attempt = Attempt(started=self._clock())
            try:
                yield _as_chunk(await self._error_reply(meta, exc.error, attempt))
            finally:
                self._publish(meta, attempt)
            return
        request.upstream.sink = timing
        outcomes: list[Outcome] = []
        async with aclosing(self._attempts(request, outcomes)) as attempts:
            async for target, attempt in attempts:
                committed = False
                outcome: Outcome | None = None
                try:
                    resp_or_outcome = await self._open_stream(request, target, attempt)
                    if isinstance(resp_or_outcome, Outcome):
                        outcome = resp_or_outcome
                    else:
                        prepared, resp = resp_or_outcome
                        try:
                            async for chunk in self._relay.relay(meta, prepared, resp, attempt):
                                if not committed:
                                    chunk.upstream.first_byte_us = request.upstream.first_byte()
                                committed = True
                                yield chunk
                        finally:
                            resp.close()
                except EarlyFailure as exc:
                    reply = await self._error_reply(meta, exc.error, attempt)
                    outcome = Outcome(Kind.RETRY, reply, counts_as_failure=True)
                finally:
                    request.upstream.stop()
                    if committed or outcome is None:
                        # content reached the client (the stream is this attempt's, whatever its end), or the client
                        # left (the relay records a status only when the upstream stream ended)
                        if attempt.status == 0:
                            attempt.error_type = "client_gone"
                        ended = _ended(attempt.status) if attempt.status else _GONE
                        await self._settle(request, target, attempt, ended, outcomes)
                if committed:
                    return
                assert outcome is not None
                await self._settle(request, target, attempt, outcome, outcomes)
                if outcome.kind is Kind.STOP:
                    yield _as_chunk(outcome.reply)
                    return
        yield _as_chunk(await self._final(request, outcomes))

    async def _open_stream(
        self, request: _Request, target: Target, attempt: Attempt
    ) -> Outcome | tuple[Prepared, UpstreamResponse]:
        meta = request.meta
        try:
            prepared = await self._prepare(request, target)
        except ResolveError as exc:
            return Outcome(Kind.NEXT, await self._error_reply(meta, exc.error, attempt))
        try:
            async with asyncio.timeout(request.plan.config.timeout_s or None):
                resp = await self._send(prepared, request.upstream)
        except (TimeoutError, UpstreamTimeout) as exc:
            err = hub_error(504, f"provider timed out: {exc or 'per-target timeout'}")
            return Outcome(Kind.RETRY, await self._error_reply(meta, err, attempt), counts_as_failure=True)
        except UpstreamError as exc:
            err = hub_error(502, f"provider unreachable: {exc}")
            return Outcome(Kind.RETRY, await self._error_reply(meta, err, attempt), counts_as_failure=True)
        if resp.status >= 400:
            try:
                body = await resp.read()
            except UpstreamError:
                body = b""
            finally:
                resp.close()
            attempt.status, attempt.error_type = resp.status, "upstream_status"
            return await self._upstream_failure(meta, prepared, resp, body)
        return prepared, resp

    # -- the loop --------------------------------------------------------------------------------------------

    async def _begin(self, meta: common_pb2.RequestMeta, body: bytes) -> _Request:
        try:
            parsed: Any = jsonx.loads(body)
        except jsonx.JSONDecodeError as exc:
            raise ResolveError(hub_error(400, f"request body is not valid JSON: {exc}")) from exc
        if not isinstance(parsed, dict):
            raise ResolveError(hub_error(400, "request body must be a JSON object"))
        if meta.operation not in _OPERATION_PATH:
            raise ResolveError(hub_error(400, "this operation is not supported yet"))
        snapshot = self._snapshot()
        resilience = snapshot.settings.get("resilience")
        epoch = resilience.get("resetEpoch", 0) if isinstance(resilience, dict) else 0
        self.health.use_epoch(str(epoch))
        await self.health.refresh()
        plan = build_plan(
            meta.model,
            self._catalog,
            snapshot,
            stats=self.stats,
            rng=self._rng,
            blocked_until=lambda t: self.health.blocked_until(*_health_keys(t)),
        )
        return _Request(meta, body, parsed, plan, profiles_from(snapshot.settings), UpstreamClock(self._clock))

    async def _attempts(
        self, request: _Request, outcomes: list[Outcome]
    ) -> AsyncGenerator[tuple[Target, Attempt], None]:
        """Yields (target, attempt) in plan order with retries; the caller appends each attempt's outcome
        through :meth:`_settle` before asking for the next."""
        config = request.plan.config
        number = 0
        for index, target in enumerate(request.plan.targets):
            if number >= config.max_attempts:
                return
            profiles = (request.profiles["connection"], request.profiles["provider"])
            if not await self.health.admit(*_health_keys(target), profiles=profiles):
                continue
            if index and number and config.fallback_delay_s:
                await asyncio.sleep(config.fallback_delay_s)
            retries = 0
            while number < config.max_attempts:
                number += 1
                yield (
                    target,
                    Attempt(
                        started=self._clock(),
                        number=number,
                        combo=request.plan.combo,
                        provider=target.provider.id,
                        connection_id=target.connection.id,
                        model=target.model,
                    ),
                )
                last = outcomes[-1]
                if last.kind is not Kind.RETRY or retries >= config.max_retries or number >= config.max_attempts:
                    break
                if last.retry_after_ms > config.max_retry_after_s * 1000:
                    break  # the provider asks for a longer wait than we may spend: try the next target
                retries += 1
                await asyncio.sleep(max(config.retry_delay_s, last.retry_after_ms / 1000))

    async def _settle(
        self, request: _Request, target: Target, attempt: Attempt, outcome: Outcome, outcomes: list[Outcome]
    ) -> None:
        """Record one attempt: its outcome, breaker and cooldown state, routing statistics and usage event."""
        outcomes.append(outcome)
        conn_key, prov_key = _health_keys(target)
        self.stats.end(target.key, attempt.ttft_ms if outcome.kind is Kind.OK else None)
        try:
            if outcome.kind is Kind.OK:
                await self.health.success(conn_key)
                await self.health.success(prov_key)
            elif outcome.rate_limited:
                await self.health.failure(
                    conn_key, request.profiles["connection"], rate_limited=True, retry_after_ms=outcome.retry_after_ms
                )
            elif outcome.counts_as_failure:
                await self.health.failure(
                    conn_key, request.profiles["connection"], retry_after_ms=outcome.retry_after_ms
                )
                await self.health.failure(prov_key, request.profiles["provider"])
        finally:
            self._publish(request.meta, attempt)

    async def _final(self, request: _Request, outcomes: list[Outcome]) -> executor_pb2.ExecuteReply:
        """Every attempt failed (or none could be made): the last answer with the earliest ``Retry-After``."""
        waits = [o.retry_after_ms for o in outcomes if o.retry_after_ms > 0]
        if outcomes:
            reply = outcomes[-1].reply
            if waits:
                reply.headers["retry-after"] = str(max(1, -(-min(waits) // 1000)))
            return reply
        now = self.health.now_ms()
        wait = max(1000, request.plan.blocked_until_ms - now)
        err = hub_error(
            503,
            f"every target of {request.meta.model!r} is cooling down or has its circuit breaker open",
            code="no_available_target",
            retry_after_ms=wait,
        )
        attempt = Attempt(started=self._clock(), combo=request.plan.combo)
        try:
            return await self._error_reply(request.meta, err, attempt)
        finally:
            self._publish(request.meta, attempt)

    # -- shared --------------------------------------------------------------------------------------------

    async def _count_tokens(self, meta: common_pb2.RequestMeta, body: bytes) -> executor_pb2.ExecuteReply:
        async def error_reply(m: common_pb2.RequestMeta, err: common_pb2.Error) -> executor_pb2.ExecuteReply:
            return await self._error_reply(m, err, Attempt(started=self._clock()))

        return await count_tokens(
            meta,
            body,
            catalog=self._catalog,
            snapshot=self._snapshot(),
            translator=self._translator,
            error_reply=error_reply,
        )

    async def _prepare(self, request: _Request, target: Target) -> Prepared:
        self.stats.begin(target.key)
        operation = _OPERATION_PATH[request.meta.operation]
        return await prepare(
            target, request.meta, request.body, request.parsed, self._credentials, self._translator, operation
        )

    async def _send(self, prepared: Prepared, clock: UpstreamClock) -> UpstreamResponse:
        """The attempt's request; ``clock`` runs from here until the caller stops it (the response ended)."""
        clock.start()
        return await self._upstream.post(prepared.target.provider.id, prepared.url, prepared.headers, prepared.body)

    def _elapsed_ms(self, attempt: Attempt) -> int:
        return int((self._clock() - attempt.started) * 1000)

    def _publish(self, meta: common_pb2.RequestMeta, attempt: Attempt) -> None:
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
                combo=attempt.combo,
                status=attempt.status,
                latency_ms=self._elapsed_ms(attempt),
                ttft_ms=attempt.ttft_ms,
                usage=attempt.usage,
                client_format=meta.client_format,
                stream=meta.stream,
                attempt=attempt.number,
                error_type=attempt.error_type,
                endpoint=meta.endpoint,
            )
        )


# how an attempt ended when the client went away mid-attempt: no fallback, no breaker failure
_GONE = Outcome(Kind.STOP, executor_pb2.ExecuteReply())


def _ended(status: int) -> Outcome:
    """A stream that reached the client: it was this attempt's; a 5xx end still counts against the target."""
    return Outcome(Kind.OK if status < 400 else Kind.STOP, executor_pb2.ExecuteReply(), counts_as_failure=status >= 500)


def _health_keys(target: Target) -> tuple[str, str]:
    return f"conn:{target.connection.id}", f"prov:{target.provider.id}"


def _timed(reply: executor_pb2.ExecuteReply, clock: UpstreamClock) -> executor_pb2.ExecuteReply:
    reply.upstream.CopyFrom(clock.timing())
    return reply


def _as_chunk(reply: executor_pb2.ExecuteReply) -> executor_pb2.ExecuteChunk:
    return executor_pb2.ExecuteChunk(
        status=reply.status, content_type=reply.content_type, headers=reply.headers, data=reply.body
    )


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(jsonx.loads(body), dict)
    except jsonx.JSONDecodeError:
        return False
