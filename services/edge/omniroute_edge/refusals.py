"""Sending a refusal: an error rendered in the client's format, with the headers that explain it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_edge.errors import ErrorRenderer

__all__ = ["send_error"]

Send = Callable[[dict[str, Any]], Any]


async def send_error(
    errors: ErrorRenderer,
    fmt: common_pb2.Format.ValueType,
    error: common_pb2.Error,
    send: Send,
    rid: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> int:
    """Send ``error`` as a complete JSON reply with ``error.status``; ``Retry-After`` (whole seconds, rounded up
    so a client that obeys it is not refused again) when the error names a wait. Returns the status."""
    body = await errors.render(fmt, error)
    out = [(b"content-type", b"application/json"), (b"x-request-id", rid.encode()), *headers]
    if error.retry_after_ms:
        out.append((b"retry-after", str(max(1, math.ceil(error.retry_after_ms / 1000))).encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": out})
    await send({"type": "http.response.body", "body": body})
    return error.status
