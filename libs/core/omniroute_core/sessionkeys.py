"""Redis key layout of active-session tracking: the edges write it, the control plane reads it (``/api/sessions``).

A session is one conversation of one caller: the client's own session header when it sends one, otherwise a
fingerprint of the request (see ``omniroute_edge.sessions``). It is *active* while it saw a request within
:data:`SESSION_TTL_MS`.

- ``SESSION_PREFIX + <id>``: a hash ``{keyId, model, createdAt, lastActive, requestCount}`` (times in Unix ms),
  expiring :data:`SESSION_TTL_MS` after its last request.
- :data:`SESSION_INDEX`: a sorted set of session ids scored by ``lastActive``; members older than the TTL are
  pruned by whoever reads or writes it.
- ``SESSION_BY_KEY + <key id>`` (:data:`ANONYMOUS` for callers without a key): the same, per API key, so the
  count of a key's active sessions is one ``ZCOUNT``.
"""

from __future__ import annotations

__all__ = ["ANONYMOUS", "SESSION_BY_KEY", "SESSION_INDEX", "SESSION_PREFIX", "SESSION_TTL_MS"]

SESSION_PREFIX = "omr:sess:s:"
SESSION_INDEX = "omr:sess:index"
SESSION_BY_KEY = "omr:sess:key:"
ANONYMOUS = "-"
SESSION_TTL_MS = 30 * 60 * 1000
