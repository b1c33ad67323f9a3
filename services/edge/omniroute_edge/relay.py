"""The one relay: every data-plane route is this ASGI app with a different :class:`Route`.

It reads the body (bounded), authenticates, reads ``model`` and ``stream``, and hands the untouched bytes to
the executor: one unary call for a complete reply, one server stream for SSE, relayed chunk by chunk as the
executor produces them. A client that disconnects cancels the executor call, which cancels the upstream request.

Every reply from the executor also feeds the gateway overhead histograms: the edge's own time minus the time the
executor says it waited on providers (``ExecuteReply.upstream``; for streams the first chunk's first-byte time
and the trailing metadata's total), so what the gateway adds is visible apart from the provider.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import grpc

from omniroute.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from omniroute_core.catalog import Catalog, load_catalog
from omniroute_core.errors import hub_error
from omniroute_core.grpcx import UPSTREAM_TIMING_KEY, call_metadata
from omniroute_core.logging import REQUEST_ID
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_edge.auth import AuthError, authenticate, presented_key
from omniroute_edge.bodies import BodyError, read_request
from omniroute_edge.errors import ErrorRenderer
from omniroute_edge.guards import NOTHING, Guards, Refused, with_headers
from omniroute_edge.http_protocol import DISCONNECT_WATCH, DisconnectWatch
from omniroute_edge.ipfilter import CLIENT_IP
from omniroute_edge.metrics import EdgeMetrics, new_request_id
from omniroute_edge.progress import Progress
from omniroute_edge.refusals import send_error
from omniroute_edge.replay import ReplayPolicy, RequestFacts, cache_policy, serve
from omniroute_edge.routes import Route
from omniroute_edge.sessions import SessionTracker, session_id

__all__ = ["EdgeContext", "EdgeMetrics", "Relay"]

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


@dataclass(slots=True)
class EdgeContext:
    """Everything a request needs, built once in the app lifespan."""

    snapshot: Callable[[], ConfigSnapshot]
    executor: executor_pb2_grpc.ExecutorAsyncStub
    errors: ErrorRenderer
    metrics: EdgeMetrics
    require_api_key: bool
    max_body_bytes: int
    request_timeout_s: float
    replay: ReplayPolicy | None = None
    guards: Guards | None = None
    sessions: SessionTracker | None = None
    # provider ids and aliases, for the dedicated /v1/providers/{provider}/... routes
    catalog: Catalog = field(default_factory=load_catalog)


class _Refusal(Exception):
    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


class Relay:
    """An ASGI app for one route. ``scope["state"]["edge"]`` holds the :class:`EdgeContext`."""

    def __init__(self, route: Route) -> None:
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: EdgeContext = scope["state"]["edge"]
        started = time.perf_counter()
        rid = _header(scope, b"x-request-id") or new_request_id()
        REQUEST_ID.set(rid)
        status = 500
        try:
            status = await self._handle(ctx, scope, receive, send, rid, started)
        finally:
            ctx.metrics.finished(self.route.path, status, time.perf_counter() - started)

    async def _handle(
        self, ctx: EdgeContext, scope: Scope, receive: Receive, send: Send, rid: str, started: float
    ) -> int:
        fmt = self.route.format
        try:
            body = await _read_body(scope, receive, ctx.max_body_bytes)
            snapshot = ctx.snapshot()
            caller = authenticate(
                presented_key(scope["headers"], _query_param(scope, b"key")),
                snapshot,
                required=ctx.require_api_key,
                scope=self.route.scope,
            )
            content_type = _header(scope, b"content-type") if self.route.body != "json" else ""
            params = scope.get("path_params", {})
            parsed = read_request(self.route, body, content_type, params, ctx.catalog, snapshot)
            doc, model, stream, operation = parsed.doc, parsed.model, parsed.stream, parsed.operation
            admission = NOTHING
            if ctx.guards is not None:
                paths = self.route.max_tokens_paths
                admission = await ctx.guards.admit(snapshot, caller.key, model, doc, parsed.token_bytes, paths, rid)
        except (_Refusal, AuthError, Refused, BodyError) as exc:
            return await send_error(ctx.errors, fmt, exc.error, send, rid, getattr(exc, "headers", ()))
        client_ip = scope.get(CLIENT_IP) or _client_ip(scope)
        key_id = caller.key.id if caller.key else ""
        if ctx.sessions is not None and operation == common_pb2.OPERATION_CHAT:
            # the next loop step: the call to the executor leaves first (the fingerprint hashes the conversation)
            caller_id = key_id or "ip:" + client_ip
            args = (ctx.sessions, scope["headers"], fmt, doc, caller_id, key_id, model)
            asyncio.get_running_loop().call_soon(_touch_session, *args)
        meta = common_pb2.RequestMeta(
            request_id=rid,
            key_id=key_id,
            client_format=fmt,
            operation=operation,
            model=model,
            stream=stream,
            deadline_unix_ms=int((time.time() + ctx.request_timeout_s) * 1000),
            client_ip=client_ip,
            endpoint=self.route.path,
            no_log=bool(caller.key and caller.key.no_log),
            content_type=parsed.content_type,
            list_operations=self.route.list_operations,
        )
        try:
            return await self._dispatch(
                ctx,
                scope,
                receive,
                with_headers(send, admission.headers),
                rid,
                meta,
                doc,
                body,
                cache_policy(caller.key, snapshot),
                started,
            )
        finally:
            if admission.release is not None:
                await admission.release()

    async def _dispatch(
        self,
        ctx: EdgeContext,
        scope: Scope,
        receive: Receive,
        send: Send,
        rid: str,
        meta: common_pb2.RequestMeta,
        doc: dict[str, Any],
        body: bytes,
        policy: str,
        started: float,
    ) -> int:
        """Run the request through the executor, behind idempotency and the exact cache when they apply.
        ``started`` is the ``perf_counter()`` at which the edge received the request (the overhead histograms)."""
        request = executor_pb2.ExecuteRequest(meta=meta, body=body)
        stream = meta.stream
        progress = stream and _header(scope, b"x-omniroute-progress").lower() == "true"

        async def run(out: Send, extra: list[tuple[bytes, bytes]]) -> int:
            if stream:
                return await self._stream(ctx, request, scope, receive, out, rid, extra, progress, started)
            return await self._unary(ctx, request, scope, receive, out, rid, extra, started)

        token = _header(scope, b"idempotency-key") or _header(scope, b"x-request-id")
        if ctx.replay is None or (not token and ctx.replay.cache is None):
            return await run(send, [])
        facts = RequestFacts(
            scope=meta.key_id or "ip:" + meta.client_ip,
            path=scope["path"],
            doc=doc,
            stream=stream,
            idempotency_token=token,
            no_cache=_header(scope, b"x-omniroute-no-cache").lower() == "true",
            cache_policy=policy,
        )
        return await serve(ctx.replay, self.route, facts, send, rid, run)

    async def _unary(
        self,
        ctx: EdgeContext,
        request: executor_pb2.ExecuteRequest,
        scope: Scope,
        receive: Receive,
        send: Send,
        rid: str,
        extra: list[tuple[bytes, bytes]],
        started: float,
    ) -> int:
        call = ctx.executor.Execute(request, metadata=call_metadata(rid), timeout=ctx.request_timeout_s)
        relay = self._relay_unary(ctx, call, send, rid, extra, started)
        return await _until_disconnect(relay, scope, receive, call.cancel)

    async def _relay_unary(
        self, ctx: EdgeContext, call: Any, send: Send, rid: str, extra: list[tuple[bytes, bytes]], started: float
    ) -> int:
        try:
            reply: executor_pb2.ExecuteReply = await call
        except grpc.aio.AioRpcError as exc:
            return await _reply_error(ctx, self.route.format, _grpc_error(exc), send, rid)
        headers = [(b"content-type", reply.content_type.encode()), (b"x-request-id", rid.encode()), *extra]
        headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
        ctx.metrics.observe_overhead(self.route.path, False, time.perf_counter() - started, reply.upstream.total_us)
        return reply.status

    async def _stream(
        self,
        ctx: EdgeContext,
        request: executor_pb2.ExecuteRequest,
        scope: Scope,
        receive: Receive,
        send: Send,
        rid: str,
        extra: list[tuple[bytes, bytes]],
        progress: bool,
        started: float,
    ) -> int:
        call = ctx.executor.ExecuteStream(request, metadata=call_metadata(rid), timeout=ctx.request_timeout_s)
        relay = self._relay_stream(ctx, call, send, rid, extra, progress, started)
        return await _until_disconnect(relay, scope, receive, call.cancel)

    async def _relay_stream(
        self,
        ctx: EdgeContext,
        call: Any,
        send: Send,
        rid: str,
        extra: list[tuple[bytes, bytes]],
        progress: bool,
        started: float,
    ) -> int:
        fmt = self.route.format
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as exc:
            return await _reply_error(ctx, fmt, _grpc_error(exc), send, rid)
        if first is grpc.aio.EOF:
            return await _reply_error(ctx, fmt, hub_error(502, "executor ended the stream without a reply"), send, rid)
        headers = [(b"content-type", first.content_type.encode()), (b"x-request-id", rid.encode()), *extra]
        sse = first.content_type.startswith("text/event-stream")
        if sse:
            headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        ticker = Progress() if progress and sse and first.status == 200 else None
        if ticker is not None:
            headers.append((b"x-omniroute-progress", b"enabled"))
        headers += [(k.encode(), v.encode()) for k, v in first.headers.items()]
        await send({"type": "http.response.start", "status": first.status, "headers": headers})
        await send({"type": "http.response.body", "body": first.data, "more_body": True})
        first_byte_s = time.perf_counter() - started
        try:
            if ticker is None:
                # events that arrived together leave together (one ASGI send, one socket write); the first
                # event above always goes alone, so the time to the first byte does not wait for others
                ready = getattr(call, "read_ready", _nothing_ready)
                while True:
                    chunk = await call.read()
                    if chunk is grpc.aio.EOF:
                        break
                    more = ready()
                    data = chunk.data if not more else b"".join([chunk.data, *(m.data for m in more)])
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            else:
                ticker.observe(first.data)
                await _relay_with_progress(call, send, ticker)
        except grpc.aio.AioRpcError as exc:
            # headers are gone: the failure becomes the format's mid-stream error event
            event = await ctx.errors.render(fmt, _grpc_error(exc), in_stream=True)
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return int(first.status)
        await send({"type": "http.response.body", "body": b""})
        upstream = await _stream_timing(call)
        first_byte_us = first.upstream.first_byte_us if first.HasField("upstream") else upstream.first_byte_us
        ctx.metrics.observe_first_byte(self.route.path, max(0.0, first_byte_s - first_byte_us / 1e6))
        ctx.metrics.observe_overhead(self.route.path, True, time.perf_counter() - started, upstream.total_us)
        return int(first.status)


def _touch_session(
    sessions: SessionTracker,
    headers: list[tuple[bytes, bytes]],
    fmt: common_pb2.Format.ValueType,
    doc: dict[str, Any],
    caller: str,
    key_id: str,
    model: str,
) -> None:
    session = session_id(headers, fmt, doc, caller, model)
    if session is not None:
        sessions.touch(session, key_id, model)


async def _relay_with_progress(call: Any, send: Send, ticker: Progress) -> None:
    """The stream loop with progress frames: a read that outlasts the interval lets a frame out first."""
    reading = asyncio.ensure_future(call.read())
    try:
        while True:
            done, _ = await asyncio.wait({reading}, timeout=ticker.wait_s())
            if not done:
                if ticker.at_boundary:
                    await send({"type": "http.response.body", "body": ticker.frame(), "more_body": True})
                else:
                    await asyncio.wait({reading})
                continue
            chunk = reading.result()
            if chunk is grpc.aio.EOF:
                break
            ticker.observe(chunk.data)
            await send({"type": "http.response.body", "body": chunk.data, "more_body": True})
            reading = asyncio.ensure_future(call.read())
        await send({"type": "http.response.body", "body": ticker.frame(done=True), "more_body": True})
    finally:
        reading.cancel()


def _nothing_ready() -> list[Any]:
    """``read_ready`` of a grpc.aio call, which cannot tell what it has received (EXECUTOR_CLIENT=grpc)."""
    return []


async def _stream_timing(call: Any) -> executor_pb2.UpstreamTiming:
    """The stream's upstream timing from the executor's trailing metadata (empty when it sent none)."""
    timing = executor_pb2.UpstreamTiming()
    for key, value in await call.trailing_metadata() or ():
        if key == UPSTREAM_TIMING_KEY and isinstance(value, bytes):
            timing.ParseFromString(value)
    return timing


async def _until_disconnect(
    work: Coroutine[Any, Any, int], scope: Scope, receive: Receive, cancel: Callable[[], Any]
) -> int:
    """Run ``work`` (the relay of one executor call) in the request's own task; when the client goes away,
    ``cancel`` the executor call (→ upstream). A cancelled call ends ``work`` with ``CancelledError`` at its next
    read of the call: that is a 499. Whatever ``work`` awaits besides the call (a ``send`` to a gone client, an
    error rendering) returns on its own, so cancelling the call is enough.

    Under our uvicorn protocol the connection's :class:`DisconnectWatch` calls back when it is lost; under any
    other ASGI server a watcher task waits in ``receive()`` for ``http.disconnect``."""
    gone = False

    def lost() -> None:
        nonlocal gone
        gone = True
        cancel()

    stop: Callable[[], object]
    watch = scope.get("extensions", {}).get(DISCONNECT_WATCH)
    if isinstance(watch, DisconnectWatch):
        watch.add(lost)
        stop = partial(watch.discard, lost)
    else:
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        watcher.add_done_callback(lambda w: None if w.cancelled() or w.exception() is not None else lost())
        stop = watcher.cancel
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            return 499
        raise
    finally:
        stop()


async def _reply_error(
    ctx: EdgeContext, fmt: common_pb2.Format.ValueType, error: common_pb2.Error, send: Send, rid: str
) -> int:
    return await send_error(ctx.errors, fmt, error, send, rid)


def _grpc_error(exc: grpc.aio.AioRpcError) -> common_pb2.Error:
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return hub_error(503, "the executor service is unavailable; retry shortly", type_="service_unavailable")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return hub_error(504, "the request exceeded its deadline", type_="timeout_error")
    log.error("executor call failed", extra={"code": str(code), "details": exc.details()})
    return hub_error(500, "internal error while executing the request", type_="server_error")


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Refusal(hub_error(413, f"request body exceeds {limit} bytes", code="body_too_large"))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refusal(hub_error(413, f"request body exceeds {limit} bytes", code="body_too_large"))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _query_param(scope: Scope, name: bytes) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if name not in query:
        return None
    for key, value in parse_qsl(query.decode("latin-1")):
        if key.encode() == name:
            return value
    return None


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""
