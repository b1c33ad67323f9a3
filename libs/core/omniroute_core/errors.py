"""Hub errors: the OpenAI error envelope, which is also what an OpenAI-format client receives.

Rendering into other client formats is the translator's job; this module only knows the hub's own shape.
"""

from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_core import jsonx

__all__ = ["DEFAULT_TYPES", "hub_error", "hub_error_body"]

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
