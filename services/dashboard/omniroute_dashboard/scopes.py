"""API key scopes (what a key may be used for).

- ``chat``, ``embeddings``, ``images``, ``audio``: the data-plane endpoint families (the edge checks them).
- ``*``: every data-plane scope, but *not* ``admin``: a wildcard client key never grants the management API.
- ``admin``: the management API (``/api/*`` of this service), like a dashboard login.
"""

from __future__ import annotations

__all__ = ["ADMIN_SCOPE", "DEFAULT_SCOPES", "KNOWN_SCOPES", "WILDCARD_SCOPE"]

ADMIN_SCOPE = "admin"
WILDCARD_SCOPE = "*"
KNOWN_SCOPES: frozenset[str] = frozenset({"chat", "embeddings", "images", "audio", ADMIN_SCOPE, WILDCARD_SCOPE})
DEFAULT_SCOPES: tuple[str, ...] = (WILDCARD_SCOPE,)
