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
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from omniroute.v1 import common_pb2, executor_pb2, usage_pb2
from omniroute_core.catalog import Catalog
from omniroute_core.errors import hub_error
from omniroute_core.health import LOCKOUT_STATUSES, lockout_key, reset_epoch
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_executor.attempts import Attempt, Kind, Outcome, transport_failure
from omniroute_executor.count_tokens import count_tokens
from omniroute_executor.listing import list_models
from omniroute_executor.local import LocalEmbedder
from omniroute_executor.modalities import OPERATION_NAMES, ModalityRunner, Source, parse_source
from omniroute_executor.outbound import NetPolicies, NetPolicy
from omniroute_executor.prepare import Credentials, Prepared, prepare
from omniroute_executor.relay_stream import EarlyFailure, StreamRelay
from omniroute_executor.replies import Replies
from omniroute_executor.resilience import HealthStore, Profile, profiles_from
from omniroute_executor.resolve import ResolveError, Target
from omniroute_executor.routing import Plan, RoutingStats, build_plan
from omniroute_executor.timing import UpstreamClock
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream, UpstreamError, UpstreamResponse
from omniroute_executor.usage_events import new_event_id

__all__ = ["Defer", "Engine", "EventSink"]

log = logging.getLogger(__name__)
JSON = "application/json"


# runs an attempt's bookkeeping after the reply it belongs to was sent (and before the executor stops)
Defer = Callable[[Coroutine[Any, Any, None]], None]


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
    source: Source
    upstream: UpstreamClock  # time spent waiting on providers (the edge's overhead histogram subtracts it)
    net: NetPolicy  # outbound proxies and per-provider concurrency limits


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
        modalities: ModalityRunner | None = None,
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
        self._net = NetPolicies(credentials.decrypt, upstream.default_limits)
        self._replies = Replies(translator)
        # embeddings, images and transcription: the same loop, their own dialects (omniroute_executor.modalities)
        self._modalities = modalities or ModalityRunner(
            upstream, credentials, LocalEmbedder(), on_response=self.health.observe_response
        )

    # -- non-streaming -------------------------------------------------------------------------------------

    async def execute(
        self, req: executor_pb2.ExecuteRequest, *, defer: Defer | None = None
    ) -> executor_pb2.ExecuteReply:
        """The reply of a complete (non-streamed) request. ``defer``, when given, takes the final attempt's
        bookkeeping (health, routing statistics, usage event) to run after the reply left (the gRPC servicer's
        :meth:`~omniroute_executor.server.ExecutorServicer.defer`); without it, it runs before returning."""
        meta = req.meta
        if meta.operation == common_pb2.OPERATION_COUNT_TOKENS:
            return await self._count_tokens(meta, req.body)
        if meta.operation == common_pb2.OPERATION_LIST_MODELS:
            return await list_models(meta, self._catalog, self._snapshot(), self._translator)
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
                final = outcome.kind in (Kind.OK, Kind.STOP)
                if final and defer is not None:
                    defer(self._settle(request, target, attempt, outcome, outcomes))
                else:
                    await self._settle(request, target, attempt, outcome, outcomes)
                if final:
                    return _timed(outcome.reply, request.upstream)
        return _timed(await self._final(request, outcomes), request.upstream)

    async def _try_once(self, request: _Request, target: Target, attempt: Attempt) -> Outcome:
        meta = request.meta
        if meta.operation != common_pb2.OPERATION_CHAT:
            return await self._try_modality(request, target, attempt)
        try:
            prepared = await self._prepare(request, target)
        except ResolveError as exc:
            return Outcome(Kind.NEXT, await self._error_reply(meta, exc.error, attempt))
        try:
            async with _deadline(request.plan.config.timeout_s):
                resp = await self._send(prepared, request)
                try:
                    body = await resp.read()
                finally:
                    resp.close()
        except (TimeoutError, UpstreamError) as exc:
            return await self._transport_failure(meta, exc, attempt)
        attempt.ttft_ms = self._elapsed_ms(attempt)
        attempt.status = resp.status
        if resp.status >= 400:
            attempt.error_type = "upstream_status"
            return await self._replies.upstream_failure(meta, prepared, resp, body)
        reply = await self._replies.success(meta, prepared, resp, body, attempt)
        return Outcome(Kind.OK if reply.status < 400 else Kind.NEXT, reply)

    async def _try_modality(self, request: _Request, target: Target, attempt: Attempt) -> Outcome:
        """An embeddings, image or transcription attempt (:mod:`omniroute_executor.modalities`)."""
        self.stats.begin(target.key)
        operation = OPERATION_NAMES[request.meta.operation]
        try:
            async with _deadline(request.plan.config.timeout_s):
                # the whole attempt counts as the provider's time (its request building is small beside it)
                request.upstream.start()
                outcome = await self._modalities.attempt(operation, request.source, target, attempt, request.net)
        except TimeoutError:
            err = hub_error(504, "provider timed out: per-target timeout")
            return Outcome(Kind.RETRY, await self._error_reply(request.meta, err, attempt), counts_as_failure=True)
        attempt.ttft_ms = self._elapsed_ms(attempt)
        return outcome

    async def _error_reply(
        self, meta: common_pb2.RequestMeta, error: common_pb2.Error, attempt: Attempt
    ) -> executor_pb2.ExecuteReply:
        return await self._replies.error(meta, error, attempt)

    async def _transport_failure(self, meta: common_pb2.RequestMeta, exc: Exception, attempt: Attempt) -> Outcome:
        failure = transport_failure(exc)
        attempt.error_type = attempt.error_type or failure.error_type
        reply = await self._error_reply(meta, failure.error, attempt)
        return Outcome(
            failure.kind, reply, retry_after_ms=failure.retry_after_ms, counts_as_failure=failure.counts_as_failure
        )

    # -- streaming -----------------------------------------------------------------------------------------

    async def execute_stream(
        self,
        req: executor_pb2.ExecuteRequest,
        timing: executor_pb2.UpstreamTiming | None = None,
        *,
        defer: Defer | None = None,
    ) -> AsyncIterator[executor_pb2.ExecuteChunk]:
        """First chunk: status and headers (and, on failure before any content, the whole error body).
        ``timing`` is kept up to date with the time spent waiting on providers (for the trailing metadata).
        ``defer``: as for :meth:`execute`, the bookkeeping of the attempt whose content reached the client runs
        after the stream ended, so its end (the trailers) does not wait for it."""
        meta = req.meta
        if meta.operation != common_pb2.OPERATION_CHAT:  # counts, listings and the other operations never stream
            yield _as_chunk(await self.execute(req))
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
                        if defer is not None:
                            defer(self._settle(request, target, attempt, ended, outcomes))
                        else:
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
            async with _deadline(request.plan.config.timeout_s):
                resp = await self._send(prepared, request)
        except (TimeoutError, UpstreamError) as exc:
            return await self._transport_failure(meta, exc, attempt)
        if resp.status >= 400:
            try:
                body = await resp.read()
            except UpstreamError:
                body = b""
            finally:
                resp.close()
            attempt.status, attempt.error_type = resp.status, "upstream_status"
            return await self._replies.upstream_failure(meta, prepared, resp, body)
        return prepared, resp

    # -- the loop --------------------------------------------------------------------------------------------

    async def _begin(self, meta: common_pb2.RequestMeta, body: bytes) -> _Request:
        if meta.operation not in OPERATION_NAMES:
            raise ResolveError(hub_error(400, "this operation is not supported"))
        source = parse_source(meta, body)
        snapshot = self._snapshot()
        epoch, profiles = snapshot.derived("engine.resilience", lambda: _resilience(snapshot))
        self.health.use_epoch(epoch)
        await self.health.refresh()
        plan = build_plan(
            meta.model, self._catalog, snapshot, stats=self.stats, rng=self._rng, blocked_until=self._blocked_until
        )
        parsed = source.parsed if isinstance(source.parsed, dict) else {}
        clock = UpstreamClock(self._clock)
        net = self._net.for_snapshot(snapshot)
        return _Request(meta, body, parsed, plan, profiles, source, clock, net)

    def _blocked_until(self, target: Target) -> int:
        if self.health.quiet:  # no breaker, cooldown or lockout anywhere: skip building the keys
            return 0
        return self.health.blocked_until(*_health_keys(target), lockout_key(target.connection, target.model))

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
            elif outcome.kind is Kind.NEXT and attempt.status in LOCKOUT_STATUSES:
                lock = lockout_key(target.connection, target.model)
                await self.health.lock_out(lock, request.profiles["connection"], attempt.status)
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
        operation = OPERATION_NAMES[request.meta.operation]
        return await prepare(
            target,
            request.meta,
            request.body,
            request.parsed,
            self._credentials,
            self._translator,
            operation,
            request.plan.policy_for(target),
        )

    async def _send(self, prepared: Prepared, request: _Request) -> UpstreamResponse:
        """The attempt's request; the request's upstream clock runs from here until the caller stops it (the
        response ended). Through the provider's proxy and within its pool's concurrency limits."""
        request.upstream.start()
        pid = prepared.target.provider.id
        resp = await self._upstream.post(
            pid,
            prepared.url,
            prepared.headers,
            prepared.body,
            proxy=request.net.proxy(pid, prepared.url),
            limits=request.net.limits_for(pid),
        )
        self.health.observe_response(prepared.target.connection.id, resp.status, resp.headers)
        return resp

    def _elapsed_ms(self, attempt: Attempt) -> int:
        return int((self._clock() - attempt.started) * 1000)

    def _publish(self, meta: common_pb2.RequestMeta, attempt: Attempt) -> None:
        if self._publisher is None:
            return
        self._publisher.emit(
            usage_pb2.UsageEvent(
                event_id=new_event_id(),
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


_NO_DEADLINE = nullcontext()


def _deadline(seconds: float) -> AbstractAsyncContextManager[object]:
    """``asyncio.timeout(seconds)``; for 0 (no per-target timeout) a shared no-op, which is what
    ``asyncio.timeout(None)`` amounts to, without its per-call setup."""
    return asyncio.timeout(seconds) if seconds else _NO_DEADLINE


def _resilience(snapshot: ConfigSnapshot) -> tuple[str, dict[str, Profile]]:
    """The snapshot's reset epoch and breaker profiles."""
    return reset_epoch(snapshot.settings), profiles_from(snapshot.settings)


def _health_keys(target: Target) -> tuple[str, str]:
    return f"conn:{target.connection.id}", f"prov:{target.provider.id}"


def _timed(reply: executor_pb2.ExecuteReply, clock: UpstreamClock) -> executor_pb2.ExecuteReply:
    reply.upstream.CopyFrom(clock.timing())
    return reply


def _as_chunk(reply: executor_pb2.ExecuteReply) -> executor_pb2.ExecuteChunk:
    return executor_pb2.ExecuteChunk(
        status=reply.status, content_type=reply.content_type, headers=reply.headers, data=reply.body
    )
