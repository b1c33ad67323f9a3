"""``omniroute.v1.ProviderAdmin``: the control plane's minimal provider calls (test, model list, proxy test).

Request bodies (JSON, camelCase):

- ``TestConnection`` / ``ListModels``: ``{"connection": {"id", "provider", "baseUrl", "apiKeyEnc", "headers"}}``
  for a stored connection (the dashboard passes the row it just read, so a change not yet in this executor's
  snapshot is still tested as stored; the key stays encrypted, aad = the id, and is decrypted here), or
  ``{"candidate": {"provider", "apiKey", "baseUrl", "headers"}}`` for credentials not saved yet; either may carry
  ``"configVersion"``, the config version the dashboard read at: the call first waits (up to 2 s) for this
  executor's snapshot to reach it, so a provider node created a moment earlier is known.
- ``TestProxy``: ``{"proxyUrl": "http://user:pass@host:port", "testUrl": "https://..."}``.

Replies:

- ``TestConnection``: ``{"valid", "latencyMs", "status" (the provider's HTTP status, null without an answer),
  "provider", "error"?}``; valid means a 2xx answer.
- ``ListModels``: ``{"ok": true, "provider", "models": [{"id", "name"?, "ownedBy"?, "type"?}], "source"}`` with
  source ``live`` (the provider's list endpoint) or ``catalog`` (it has none), else ``{"ok": false, "status",
  "error", "latencyMs"}``.
- ``TestProxy``: ``{"success", "latencyMs", "status"?, "error"?}``; success means an HTTP answer came back through
  the proxy, whatever its status (an unauthenticated 401 from the test URL still proves the path works).

How a provider is probed is catalog data: its ``test`` path, else its ``models`` path (GET), else a one-token chat
request to its first catalog model (built by the translator for non-OpenAI formats). Every call is bounded by one
timeout; errors never carry the API key or the proxy password.
"""

from omniroute_executor.admin._service import ProviderAdminServicer

__all__ = ["ProviderAdminServicer"]
