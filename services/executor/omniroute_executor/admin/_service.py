"""The ``ProviderAdmin`` servicer (shapes in the package docstring): parse, probe the provider, describe the result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import grpc

from omniroute.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from omniroute_core import jsonx
from omniroute_core.catalog import Catalog
from omniroute_core.resolution import ResolveError, Target, provider_by_id
from omniroute_core.snapshot import ConfigSnapshot, ProviderConnection
from omniroute_executor.admin._probe import (
    Probe,
    catalog_models,
    parse_models,
    probe_body,
    probe_for,
    scrub,
    upstream_message,
)
from omniroute_executor.outbound import NetPolicies
from omniroute_executor.prepare import Credentials, provider_headers
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream, UpstreamError

__all__ = ["ProviderAdminServicer"]

Context = grpc.aio.ServicerContext[Any, Any]

# one connection pool for every admin call: they are rare, and must not take room in a provider's own pool
_POOL = "admin"
_CANDIDATE_ID = "candidate"
# how long a call waits for this executor's snapshot to reach the dashboard's config version
_CATCH_UP_S = 2.0


class _BadRequest(Exception):
    """A malformed RPC body (→ INVALID_ARGUMENT); the message starts with the offending field."""


@dataclass(frozen=True, slots=True)
class _Subject:
    target: Target
    key: str  # the plain API key ("" when there is none or it cannot be read)
    key_error: str  # why a stored key could not be read ("" when it could)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None  # the provider's HTTP status; None when no answer came
    body: bytes
    latency_ms: int
    error: str  # "" on a 2xx answer

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.error


def _text(raw: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> str:
    value = raw.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        expected = "a non-empty string" if required else "a string"
        raise _BadRequest(f"{where}{name}: must be {expected}")
    return value


def _headers(raw: Mapping[str, Any], where: str, name: str) -> dict[str, str]:
    value = raw.get(name) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _BadRequest(f"{where}.{name}: must be an object of strings")
    return value


def _http_url(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _BadRequest(f"{field}: must be an http(s) URL")
    return value


class ProviderAdminServicer(executor_pb2_grpc.ProviderAdminServicer):
    def __init__(
        self,
        *,
        catalog: Catalog,
        snapshot: Callable[[], ConfigSnapshot],
        credentials: Credentials,
        upstream: Upstream,
        translator: TranslatorClient,
        timeout_s: float,
    ) -> None:
        self._catalog = catalog
        self._snapshot = snapshot
        self._credentials = credentials
        self._upstream = upstream
        self._translator = translator
        self._timeout_s = timeout_s
        # connection tests and model lists leave through the proxy the provider's real traffic uses
        self._net = NetPolicies(credentials.decrypt, upstream.default_limits)

    async def TestConnection(self, request: executor_pb2.AdminRequest, context: Context) -> executor_pb2.AdminReply:
        subject = await self._subject(request, context)
        spec = subject.target.provider
        probe = probe_for(spec, subject.target.connection.options)
        if subject.key_error:
            outcome = _Outcome(None, b"", 0, subject.key_error)
        elif probe is None:
            outcome = _Outcome(None, b"", 0, f"provider {spec.id!r} has no endpoint to test credentials with")
        else:
            outcome = await self._call(subject, probe)
        doc: dict[str, Any] = {
            "valid": outcome.ok,
            "latencyMs": outcome.latency_ms,
            "status": outcome.status,
            "provider": spec.id,
        }
        if outcome.error:
            doc["error"] = outcome.error
        return executor_pb2.AdminReply(body_json=jsonx.dumps(doc))

    async def ListModels(self, request: executor_pb2.AdminRequest, context: Context) -> executor_pb2.AdminReply:
        subject = await self._subject(request, context)
        spec = subject.target.provider
        path = spec.path("models", stream=False, model="", options=subject.target.connection.options)
        if path is None:
            doc = {"ok": True, "provider": spec.id, "models": catalog_models(spec), "source": "catalog"}
            return executor_pb2.AdminReply(body_json=jsonx.dumps(doc))
        outcome = (
            _Outcome(None, b"", 0, subject.key_error)
            if subject.key_error
            else await self._call(subject, Probe("GET", path))
        )
        if outcome.ok:
            try:
                models = parse_models(spec.format, outcome.body)
            except ValueError as exc:
                outcome = _Outcome(outcome.status, b"", outcome.latency_ms, f"unexpected model list: {exc}")
            else:
                doc = {"ok": True, "provider": spec.id, "models": models, "source": "live"}
                return executor_pb2.AdminReply(body_json=jsonx.dumps(doc))
        failed = {"ok": False, "status": outcome.status, "error": outcome.error, "latencyMs": outcome.latency_ms}
        return executor_pb2.AdminReply(body_json=jsonx.dumps(failed))

    async def TestProxy(self, request: executor_pb2.AdminRequest, context: Context) -> executor_pb2.AdminReply:
        try:
            doc = self._body(request)
            proxy_url = _http_url(_text(doc, "proxyUrl", "", required=True), "proxyUrl")
            test_url = _http_url(_text(doc, "testUrl", "", required=True), "testUrl")
        except _BadRequest as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        parts = urlsplit(proxy_url)
        secrets = [s for s in (parts.password, parts.username) if s]
        start = time.perf_counter()
        result: dict[str, Any] = {"success": False}
        try:
            async with asyncio.timeout(self._timeout_s):
                resp = await self._upstream.get(_POOL, test_url, {"Accept": "*/*"}, proxy=proxy_url)
                try:
                    await resp.read()
                finally:
                    resp.close()
            result["status"] = resp.status
            if resp.status == 407:
                result["error"] = "the proxy refused the credentials (407 Proxy Authentication Required)"
            else:
                result["success"] = True
        except TimeoutError:
            result["error"] = f"no answer within {self._timeout_s:g}s"
        except (UpstreamError, ValueError) as exc:
            result["error"] = scrub(str(exc), secrets)
        result["latencyMs"] = _elapsed_ms(start)
        return executor_pb2.AdminReply(body_json=jsonx.dumps(result))

    def _body(self, request: executor_pb2.AdminRequest) -> dict[str, Any]:
        try:
            doc = jsonx.loads(request.body_json)
        except ValueError as exc:
            raise _BadRequest(f"body: malformed JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise _BadRequest("body: must be a JSON object")
        return doc

    async def _subject(self, request: executor_pb2.AdminRequest, context: Context) -> _Subject:
        """The connection (stored or candidate) as a routing target with its key. Aborts the call with
        INVALID_ARGUMENT for a malformed body and NOT_FOUND for a provider id neither the catalog nor a node has."""
        try:
            doc = self._body(request)
            conn, key = self._connection(doc)
            version = doc.get("configVersion", 0)
            if not isinstance(version, int) or isinstance(version, bool) or version < 0:
                raise _BadRequest("configVersion: must be a non-negative integer")
        except _BadRequest as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        snapshot = await self._snapshot_at_least(version)
        spec = provider_by_id(conn.provider, self._catalog, snapshot)
        if spec is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"unknown provider {conn.provider!r}")
        node = snapshot.nodes_by_id.get(spec.id)
        target = Target(spec, conn, "", node.headers_enc if node is not None else "")
        if key is not None:
            return _Subject(target, key, "")
        try:
            return _Subject(target, self._credentials.key_for(target), "")
        except ResolveError as exc:
            return _Subject(target, "", exc.error.message)

    async def _snapshot_at_least(self, version: int) -> ConfigSnapshot:
        """This executor's config snapshot once it has caught up with ``version`` (the one the dashboard read the
        connection at), so a provider node created a moment ago is known; after ``_CATCH_UP_S`` the snapshot
        at hand (the provider is then unknown: NOT_FOUND, as before)."""
        snapshot = self._snapshot()
        deadline = time.monotonic() + _CATCH_UP_S
        while snapshot.version < version and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            snapshot = self._snapshot()
        return snapshot

    def _connection(self, doc: Mapping[str, Any]) -> tuple[ProviderConnection, str | None]:
        """The connection and, for a candidate, its plain key (None: read the stored, encrypted one)."""
        stored, candidate = doc.get("connection"), doc.get("candidate")
        raw = stored if stored is not None else candidate
        where = "connection" if stored is not None else "candidate"
        if not isinstance(raw, dict):
            raise _BadRequest("connection: an object 'connection' or 'candidate' is required")
        conn = ProviderConnection(
            id=_text(raw, "id", where + ".", required=True) if stored is not None else _CANDIDATE_ID,
            provider=_text(raw, "provider", where + ".", required=True),
            name="",
            base_url=_text(raw, "baseUrl", where + "."),
            api_key_enc=_text(raw, "apiKeyEnc", where + ".") if stored is not None else "",
            headers=_headers(raw, where, "headers"),
            options=_headers(raw, where, "options"),
        )
        if conn.base_url:
            _http_url(conn.base_url, f"{where}.baseUrl")
        return conn, None if stored is not None else _text(raw, "apiKey", where + ".")

    async def _call(self, subject: _Subject, probe: Probe) -> _Outcome:
        """Send ``probe`` with the subject's credentials, bounded by the timeout; failures become an outcome."""
        target = subject.target
        start = time.perf_counter()
        status: int | None = None
        if not target.base_url:
            return _Outcome(None, b"", 0, f"provider {target.provider.id!r} needs a base URL (none is configured)")
        try:
            headers = {"Accept": "application/json", **provider_headers(target, subject.key, self._credentials)}
            url = target.base_url + probe.path
            proxy = self._net.for_snapshot(self._snapshot()).proxy(target.provider.id, url)
            async with asyncio.timeout(self._timeout_s):
                if probe.method == "GET":
                    resp = await self._upstream.get(_POOL, url, headers, proxy=proxy)
                else:
                    headers["Content-Type"] = "application/json"
                    body = await self._chat_body(target, probe)
                    resp = await self._upstream.post(_POOL, url, headers, body, proxy=proxy)
                status = resp.status
                try:
                    body = await resp.read()
                finally:
                    resp.close()
        except TimeoutError:
            error = f"no answer within {self._timeout_s:g}s"
        except UpstreamError as exc:
            error = str(exc)
        except (ResolveError, _ProbeError) as exc:
            error = str(exc)
        else:
            failure = "" if 200 <= status < 300 else scrub(upstream_message(status, body), [subject.key])
            return _Outcome(status, body, _elapsed_ms(start), failure)
        return _Outcome(status, b"", _elapsed_ms(start), scrub(error, [subject.key]))

    async def _chat_body(self, target: Target, probe: Probe) -> bytes:
        body = probe_body(probe.model)
        if target.provider.format == common_pb2.FORMAT_OPENAI_CHAT:
            return body
        try:
            out = await self._translator.request(
                common_pb2.FORMAT_OPENAI_CHAT, target.provider.format, body, probe.model, stream=False
            )
        except grpc.aio.AioRpcError as exc:
            raise _ProbeError(f"the translator is unavailable ({exc.code().name})") from exc
        if out.HasField("error"):
            raise _ProbeError(f"cannot build the test request: {out.error.message}")
        return out.body


class _ProbeError(Exception):
    """The probe request could not be built."""


async def _abort(context: Context, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("context.abort returns only by raising")


def _elapsed_ms(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)
