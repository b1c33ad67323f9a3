"""Hub errors: the OpenAI error envelope, which is also what an OpenAI-format client receives.

Rendering into other client formats is the translator's job; this module only knows the hub's own shape, and
:func:`render_error` asks the translator for the rest.
"""

from __future__ import annotations

import logging

import grpc

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core import jsonx
from omniroute_core.grpcx import call_metadata

__all__ = ["DEFAULT_TYPES", "hub_error", "hub_error_body", "render_error"]

log = logging.getLogger(__name__)

DEFAULT_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


def hub_error(
    status: int, message: str, *, type_: str = "", code: str = "", param: str = "", retry_after_ms: int = 0
) -> common_pb2.Error:
    return common_pb2.Error(
        status=status,
        type=type_ or DEFAULT_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        code=code,
        message=message,
        param=param,
        retry_after_ms=retry_after_ms,
    )


def hub_error_body(err: common_pb2.Error) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}`` as OpenAI sends it (null param/code when unset)."""
    return jsonx.dumps(
        {
            "error": {
                "message": err.message,
                "type": err.type,
                "param": err.param or None,
                "code": err.code or None,
            }
        }
    )


async def render_error(
    translator: translator_pb2_grpc.TranslatorAsyncStub,
    target: common_pb2.Format.ValueType,
    error: common_pb2.Error,
    *,
    in_stream: bool = False,
) -> bytes:
    """``error`` in the ``target`` client format: a body, or the format's mid-stream error event.

    A hub-native client (OpenAI Chat) needs no call. Otherwise the translator renders it; when the translator
    cannot be reached, the hub's own shape is returned, since an error must reach the client in some form.
    """
    from omniroute_core.formats import HUB_FORMAT

    if target != HUB_FORMAT:
        try:
            reply = await translator.RenderError(
                translator_pb2.RenderErrorIn(target=target, error=error, in_stream=in_stream),
                metadata=call_metadata(),
                timeout=2.0,
            )
            return reply.body
        except grpc.aio.AioRpcError as exc:
            log.warning("translator unavailable for an error render", extra={"code": str(exc.code())})
    body = hub_error_body(error)
    return b"data: " + body + b"\n\n" if in_stream else body
