"""API key authentication against the in-memory config snapshot (no SQL on the request path)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from omniroute.v1 import common_pb2
from omniroute_core.crypto import hash_api_key
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import ApiKey, ConfigSnapshot

__all__ = ["AuthError", "Caller", "authenticate", "presented_key"]

_KEY_HEADERS = (b"x-api-key", b"x-goog-api-key")
# the data-plane scopes: a route with no scope of its own (a listing) admits a key holding any of them
_DATA_SCOPES = frozenset({"chat", "embeddings", "images", "audio", "*"})


@dataclass(frozen=True, slots=True)
class Caller:
    key: ApiKey | None  # None: anonymous (allowed only when keys are not required)


class AuthError(Exception):
    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


def presented_key(headers: list[tuple[bytes, bytes]], query_key: str | None) -> str | None:
    """The API key a client sent: ``Authorization: Bearer``, ``x-api-key``, ``x-goog-api-key`` or ``?key=``.

    Every client format's usual place is accepted on every route, so no route needs format-specific code.
    """
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name in _KEY_HEADERS and value:
            return value.decode("latin-1").strip()
    return query_key or None


def authenticate(key: str | None, snapshot: ConfigSnapshot, *, required: bool, scope: str) -> Caller:
    """Who is calling. Raises :class:`AuthError` (401 bad/missing key, 403 missing scope). An empty ``scope`` (a
    listing) admits a key holding any data-plane scope.

    When keys are not required, an unknown key is treated as anonymous: SDKs always send *some* key, and a
    newcomer's placeholder must not break them. A known key is always checked (revoked, expired, scopes).
    """
    record = snapshot.keys_by_hash.get(hash_api_key(key)) if key else None
    if record is None:
        if required:
            message = "invalid API key" if key else "missing API key: send 'Authorization: Bearer <key>'"
            raise AuthError(hub_error(401, message, code="invalid_api_key"))
        return Caller(None)
    if not record.usable(int(time.time() * 1000)):
        raise AuthError(hub_error(401, "API key revoked or expired", code="invalid_api_key"))
    if not scope:
        if record.scopes and not _DATA_SCOPES.intersection(record.scopes):
            raise AuthError(hub_error(403, "API key has no data-plane scope", code="insufficient_scope"))
    elif record.scopes and scope not in record.scopes and "*" not in record.scopes:
        raise AuthError(hub_error(403, f"API key lacks the {scope!r} scope", code="insufficient_scope"))
    return Caller(record)
