"""gRPC failures of the services the dashboard calls (usage, the executor's ProviderAdmin) as API errors.

The services put the offending field first in an INVALID_ARGUMENT's details (``"limit: must be positive"``), which
becomes the error's ``param``.
"""

from __future__ import annotations

import re

import grpc

from omniroute_dashboard.web import ApiError

__all__ = ["rpc_error"]

_PARAM = re.compile(r"([A-Za-z][A-Za-z0-9_.]*): ")


def rpc_error(exc: grpc.aio.AioRpcError, *, service: str, slug: str, not_found_code: str = "") -> ApiError:
    """400 (bad argument, with its ``param``), 404, 503 ``<slug>_unavailable`` when ``service`` cannot be reached
    in time, else 502 ``<slug>_error``."""
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        match = _PARAM.match(details)
        return ApiError(400, details, param=match.group(1) if match else "")
    if code == grpc.StatusCode.NOT_FOUND:
        return ApiError(404, details, code=not_found_code)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ApiError(503, f"{service} unavailable", code=f"{slug}_unavailable")
    return ApiError(502, f"{service} error: {code.name}", code=f"{slug}_error")
