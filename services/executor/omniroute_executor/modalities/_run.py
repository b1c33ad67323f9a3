"""One attempt of an embeddings, image or transcription request against one target: the I/O around the pure
dialects of :mod:`._wire` and :mod:`._audio`, with the same outcome rules as chat (:mod:`..attempts`).

The client format of these operations is OpenAI's, which is the hub's own error envelope, so errors render here
without a translator call. A provider that speaks OpenAI's shape has its JSON error bodies relayed as sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from omniroute.v1 import common_pb2, executor_pb2
from omniroute_core.errors import hub_error, hub_error_body
from omniroute_core.formats import format_name
from omniroute_core.multipart import Form
from omniroute_executor.attempts import Attempt, Kind, Outcome, classify, retry_after_ms, transport_failure
from omniroute_executor.modalities._audio import (
    DEEPGRAM,
    OPENAI_TRANSCRIPTION,
    assemblyai_create,
    assemblyai_job_id,
    assemblyai_reply,
    assemblyai_upload,
)
from omniroute_executor.modalities._wire import (
    HTTP_DIALECTS,
    JSON,
    HttpDialect,
    Source,
    WireError,
    WireReply,
    WireRequest,
)
from omniroute_executor.outbound import NetPolicy
from omniroute_executor.prepare import Credentials, provider_headers
from omniroute_executor.relay_stream import relayed_headers
from omniroute_executor.replies import is_json_object
from omniroute_executor.resolve import ResolveError, Target
from omniroute_executor.upstream import Upstream, UpstreamError, UpstreamResponse

if TYPE_CHECKING:  # the local package imports this one's dialect types
    from omniroute_executor.local import LocalEmbedder

__all__ = ["DIALECTS", "ModalityRunner"]

DIALECTS: Mapping[tuple[str, str], HttpDialect] = {
    **HTTP_DIALECTS,
    ("transcription", "openai"): OPENAI_TRANSCRIPTION,
    ("transcription", "deepgram"): DEEPGRAM,
}
_LOCAL = "local"
_ASSEMBLYAI = "assemblyai"


class _Failed(Exception):
    """An attempt ended before a usable reply; ``outcome`` is how, ``error_type`` names it for the usage event."""

    def __init__(self, outcome: Outcome, error_type: str) -> None:
        super().__init__(outcome.kind.value)
        self.outcome = outcome
        self.error_type = error_type


def _reply(status: int, body: bytes, *, headers: Mapping[str, str] | None = None) -> executor_pb2.ExecuteReply:
    return executor_pb2.ExecuteReply(status=status, content_type=JSON, body=body, headers=dict(headers or {}))


def _error(error: common_pb2.Error, kind: Kind, *, failure: bool = False) -> Outcome:
    headers = {"retry-after": str(max(1, -(-error.retry_after_ms // 1000)))} if error.retry_after_ms else {}
    return Outcome(kind, _reply(error.status, hub_error_body(error), headers=headers), counts_as_failure=failure)


class ModalityRunner:
    """Runs attempts of the non-chat operations. ``poll_interval_s`` and ``max_wait_s`` bound AssemblyAI's job
    polling; ``now`` gives the ``created`` time of converted replies."""

    def __init__(
        self,
        upstream: Upstream,
        credentials: Credentials,
        local: LocalEmbedder,
        *,
        poll_interval_s: float = 1.0,
        max_wait_s: float = 600.0,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_response: Callable[[str, int, Mapping[str, str]], None] | None = None,
    ) -> None:
        self._upstream = upstream
        self._credentials = credentials
        self._local = local
        self._poll_interval_s = poll_interval_s
        self._max_wait_s = max_wait_s
        self._now = now
        self._sleep = sleep
        # (connection id, status, headers) of every provider response: the rate-limit recorder
        self._on_response = on_response

    async def attempt(
        self, operation: str, source: Source, target: Target, attempt: Attempt, net: NetPolicy | None = None
    ) -> Outcome:
        """One attempt; the caller applies the per-target timeout around it. ``attempt`` records its status,
        error type and usage for the usage event. ``net``: the request's proxies and concurrency limits."""
        local = target.provider.dialect(operation, "") == _LOCAL
        try:
            return await self._attempt(operation, source, target, attempt, net or NetPolicy())
        except _Failed as failed:
            outcome, error_type = failed.outcome, failed.error_type
        except (WireError, ResolveError) as exc:
            # the local model refusing a request refuses it anywhere; a remote dialect may still suit another target
            kind = Kind.STOP if local and exc.error.status < 500 else Kind.NEXT
            outcome, error_type = _error(exc.error, kind, failure=exc.error.status >= 500), exc.error.type
        attempt.status = attempt.status or outcome.reply.status
        attempt.error_type = attempt.error_type or error_type
        return outcome

    async def _attempt(
        self, operation: str, source: Source, target: Target, attempt: Attempt, net: NetPolicy
    ) -> Outcome:
        spec = target.provider
        dialect = spec.dialect(operation, format_name(spec.format))
        if dialect == _LOCAL:
            wire, usage = await self._local.reply(source.parsed, target.model)
            attempt.usage = usage
            return self._ok(wire, target, attempt, 200, {})
        if operation == "transcription" and dialect == _ASSEMBLYAI:
            return await self._assemblyai(source, target, attempt, net)
        http = DIALECTS.get((operation, dialect))
        if http is None or not spec.supports(operation):
            raise WireError(hub_error(400, f"provider {spec.id!r} does not support {operation}"))
        request = http.request(spec, operation, target.model, source)
        path = spec.path(operation, stream=False, model=target.model, options=target.connection.options) or ""
        resp, body = await self._send(target, path, request, http.passthrough, net)
        wire = http.reply(request, body, resp.headers.get("Content-Type", ""), int(self._now()))
        if wire.usage is not None:
            attempt.usage = wire.usage
        return self._ok(wire, target, attempt, resp.status, relayed_headers(resp))

    def _ok(
        self, wire: WireReply, target: Target, attempt: Attempt, status: int, headers: Mapping[str, str]
    ) -> Outcome:
        attempt.status = status
        reply = executor_pb2.ExecuteReply(
            status=status,
            content_type=wire.content_type,
            body=wire.body,
            headers=dict(headers),
            usage=attempt.usage,
            provider=target.provider.id,
            model=target.model,
        )
        return Outcome(Kind.OK, reply)

    def _headers(self, target: Target, content_type: str, accept: str) -> dict[str, str]:
        headers = {"Content-Type": content_type, "Accept": accept}
        headers.update(provider_headers(target, self._credentials.key_for(target), self._credentials))
        return headers

    async def _send(
        self,
        target: Target,
        path: str,
        request: WireRequest,
        passthrough: bool,
        net: NetPolicy,
        *,
        method: str = "POST",
    ) -> tuple[UpstreamResponse, bytes]:
        """One HTTP exchange; a failure status or a transport error raises :class:`_Failed` with its outcome."""
        url = target.base_url + path
        if request.query:
            url += ("&" if "?" in url else "?") + urlencode(request.query)
        headers = self._headers(target, request.content_type, request.accept)
        pid = target.provider.id
        proxy, limits = net.proxy(pid, url), net.limits_for(pid)
        try:
            if method == "GET":
                resp = await self._upstream.get(pid, url, headers, proxy=proxy, limits=limits)
            else:
                resp = await self._upstream.post(pid, url, headers, request.body, proxy=proxy, limits=limits)
            if self._on_response is not None:
                self._on_response(target.connection.id, resp.status, resp.headers)
            try:
                body = await resp.read()
            finally:
                resp.close()
        except UpstreamError as exc:
            failure = transport_failure(exc)
            outcome = _error(failure.error, failure.kind, failure=failure.counts_as_failure)
            outcome.retry_after_ms = failure.retry_after_ms
            raise _Failed(outcome, failure.error_type or failure.error.type) from exc
        if resp.status >= 400:
            raise _Failed(_upstream_failure(target, resp, body, passthrough), "upstream_status")
        return resp, body

    async def _assemblyai(self, source: Source, target: Target, attempt: Attempt, net: NetPolicy) -> Outcome:
        """Upload the audio, create the transcript job, poll it until it completes or fails."""
        spec = target.provider
        upload, fmt = assemblyai_upload(source)
        paths = spec.paths
        _, uploaded = await self._send(target, paths.get("transcriptionUpload", "/upload"), upload, False, net)
        form: Form = source.parsed
        create = WireRequest(assemblyai_create(uploaded, target.model, form))
        _, created = await self._send(target, paths.get("transcription", "/transcript"), create, False, net)
        poll_path = paths.get("transcriptionPoll", "/transcript/{id}").replace("{id}", assemblyai_job_id(created))
        waited = 0.0
        while True:
            resp, polled = await self._send(target, poll_path, WireRequest(b""), False, net, method="GET")
            job = assemblyai_reply(polled, fmt)
            if job.reply is not None:
                return self._ok(job.reply, target, attempt, 200, relayed_headers(resp))
            if job.error:
                err = hub_error(502, f"provider {spec.id!r} failed to transcribe: {job.error}", type_="upstream_error")
                raise _Failed(_error(err, Kind.NEXT), err.type)
            if waited >= self._max_wait_s:
                err = hub_error(504, f"provider {spec.id!r} did not finish the transcript in {self._max_wait_s:g} s")
                raise _Failed(_error(err, Kind.NEXT, failure=True), err.type)
            await self._sleep(self._poll_interval_s)
            waited += self._poll_interval_s


def _upstream_failure(target: Target, resp: UpstreamResponse, body: bytes, passthrough: bool) -> Outcome:
    """A provider's error status: relayed as sent when it speaks OpenAI's JSON envelope, else a hub error."""
    wait = retry_after_ms(resp.headers)
    kind = classify(resp.status)
    outcome = Outcome(
        kind,
        executor_pb2.ExecuteReply(),
        retry_after_ms=wait,
        rate_limited=resp.status == 429,
        counts_as_failure=kind is Kind.RETRY,
    )
    if passthrough and is_json_object(body):
        outcome.reply = _reply(resp.status, body, headers=relayed_headers(resp))
        outcome.reply.provider = target.provider.id
        return outcome
    snippet = body[:300].decode("utf-8", "replace")
    err = hub_error(
        resp.status,
        f"provider {target.provider.id!r} returned HTTP {resp.status}: {snippet}",
        type_="upstream_error",
        retry_after_ms=wait,
    )
    outcome.reply = _reply(resp.status, hub_error_body(err), headers=relayed_headers(resp))
    return outcome
