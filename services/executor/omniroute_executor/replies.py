"""The replies of a chat attempt, in the client's format: the provider's success (same format: the bytes as sent,
usage read from them; otherwise translated), the provider's own error status (relayed as sent when it is the
client format's JSON envelope, else rendered), and the gateway's errors."""

from __future__ import annotations

import time

from omniroute.v1 import common_pb2, executor_pb2, translator_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_executor.attempts import Attempt, Kind, Outcome, classify, retry_after_ms
from omniroute_executor.passthrough import usage_from
from omniroute_executor.prepare import Prepared
from omniroute_executor.relay_stream import relayed_headers
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import UpstreamResponse

__all__ = ["JSON", "Replies", "is_json_object"]

JSON = "application/json"


class Replies:
    def __init__(self, translator: TranslatorClient) -> None:
        self._translator = translator

    async def success(
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
                return await self.error(meta, translated.error, attempt)
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

    async def upstream_failure(
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
        if prepared.passthrough is not None and is_json_object(body):
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

    async def error(
        self, meta: common_pb2.RequestMeta, error: common_pb2.Error, attempt: Attempt
    ) -> executor_pb2.ExecuteReply:
        attempt.status = attempt.status or error.status
        attempt.error_type = attempt.error_type or error.type
        body = await self._translator.render_error(meta.client_format, error)
        headers = {"retry-after": str(max(1, -(-error.retry_after_ms // 1000)))} if error.retry_after_ms else {}
        return executor_pb2.ExecuteReply(status=error.status, content_type=JSON, body=body, headers=headers)


def is_json_object(body: bytes) -> bool:
    try:
        return isinstance(jsonx.loads(body), dict)
    except jsonx.JSONDecodeError:
        return False
