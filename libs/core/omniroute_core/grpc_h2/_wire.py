"""The wire pieces: HTTP/2 frame and setting constants, frames, HPACK literals, gRPC statuses and metadata."""

from __future__ import annotations

import base64
import collections
import struct
from collections.abc import Sequence
from typing import Any

import grpc

__all__ = [
    "ACK",
    "CANCEL",
    "CODES",
    "COMPRESSION_ERROR",
    "CONN_WINDOW",
    "CONTINUATION",
    "DATA",
    "END_HEADERS",
    "END_STREAM",
    "ENHANCE_YOUR_CALM",
    "FLOW_CONTROL_ERROR",
    "FRAME_SIZE_ERROR",
    "GOAWAY",
    "HEADERS",
    "HTTP_CODES",
    "MAX_STREAM_ID",
    "NO_ERROR",
    "PADDED",
    "PING",
    "PREFACE",
    "PRIORITY",
    "PROTOCOL_ERROR",
    "QUEUED_LIMIT",
    "REFUSED_STREAM",
    "RST",
    "RST_CODES",
    "SETTINGS",
    "STREAM_WINDOW",
    "WINDOW",
    "H2Error",
    "MessageError",
    "frame",
    "grpc_message",
    "grpc_timeout",
    "hpack_int",
    "identity",
    "incoming_metadata",
    "outgoing_metadata",
    "parse_timeout",
    "rpc_error",
    "take_messages",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
MAX_STREAM_ID = (1 << 31) - 1
NO_ERROR, REFUSED_STREAM, CANCEL = 0x0, 0x7, 0x8
# connection error codes (RFC 9113 §7)
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x1, 0x3, 0x6, 0x9, 0xB
# our receive windows: per stream (SETTINGS_INITIAL_WINDOW_SIZE) and for the connection
STREAM_WINDOW = 4 << 20
CONN_WINDOW = 1 << 30
# complete messages a stream may hold unread before its window stops being returned to the server
QUEUED_LIMIT = 1 << 20
RST_CODES = {
    0x7: grpc.StatusCode.UNAVAILABLE,  # REFUSED_STREAM: the server never processed it
    0x8: grpc.StatusCode.CANCELLED,
    0xB: grpc.StatusCode.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: grpc.StatusCode.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}
HTTP_CODES = {
    400: grpc.StatusCode.INTERNAL,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    429: grpc.StatusCode.UNAVAILABLE,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}
CODES = {code.value[0]: code for code in grpc.StatusCode}


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


def hpack_int(value: int, prefix_bits: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((value,))
    out = bytearray((limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def grpc_timeout(seconds: float) -> bytes:
    """``grpc-timeout``: at most 8 digits and a unit."""
    ms = max(1, int(seconds * 1000))
    return b"%dm" % ms if ms < 100_000_000 else b"%dS" % min(99_999_999, int(seconds))


_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}


def parse_timeout(value: bytes) -> float | None:
    """Seconds of a ``grpc-timeout`` value (digits and a unit); None when malformed."""
    unit = _TIMEOUT_UNITS.get(value[-1:])
    digits = value[:-1]
    if unit is None or not digits.isdigit() or len(digits) > 8:
        return None
    return int(digits) * unit


def grpc_message(details: str) -> bytes:
    """``grpc-message``: UTF-8, percent-encoding every byte outside printable ASCII and ``%`` itself."""
    data = details.encode()
    if all(0x20 <= b <= 0x7E and b != 0x25 for b in data):
        return data
    return b"".join(bytes((b,)) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b for b in data)


def rpc_error(
    code: grpc.StatusCode, details: str, trailers: Sequence[tuple[str, str | bytes]] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details)


def incoming_metadata(key: bytes, value: bytes) -> tuple[str, str | bytes]:
    name = key.decode("latin-1")
    if name.endswith("-bin"):
        return name, base64.b64decode(value + b"=" * (-len(value) % 4))
    return name, value.decode("latin-1")


def outgoing_metadata(key: str, value: str | bytes) -> tuple[str, str]:
    """A metadata entry as sent: lower-case key; binary values (keys ending in ``-bin``) base64 without padding."""
    key = key.lower()
    if isinstance(value, bytes):
        return key, base64.b64encode(value).rstrip(b"=").decode()
    return key, value


class H2Error(ValueError):
    """A connection error: the frame loop answers it with GOAWAY(``code``) and closes the connection."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


class MessageError(Exception):
    """A length-prefixed message that cannot be taken: ends the call with ``code``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def take_messages(buf: bytearray, limit: int, out: collections.deque[bytes]) -> int:
    """Move the complete gRPC messages at the start of ``buf`` (a 5-byte prefix each: compressed flag, size) to
    ``out``; returns their total size, prefixes included (so that empty messages count too). Raises
    :class:`MessageError` for a compressed message (none is accepted) and for one larger than ``limit``, as soon
    as its prefix arrives."""
    taken = 0
    while len(buf) >= 5:
        compressed, size = struct.unpack_from(">BI", buf)
        if compressed:
            raise MessageError(grpc.StatusCode.INTERNAL, "a compressed message, none was accepted")
        if size > limit:
            raise MessageError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"message larger than max ({size} vs. {limit})")
        if len(buf) < 5 + size:
            break
        out.append(bytes(buf[5 : 5 + size]))
        taken += 5 + size
        del buf[: 5 + size]
    return taken


def identity(data: Any) -> Any:
    return data
