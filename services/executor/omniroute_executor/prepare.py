"""Building the provider request for one attempt: URL, auth headers and body.

Headers, later ones winning: the catalog's fixed headers (API versions), the credential in the provider's auth
style, a provider node's custom headers (decrypted here), the connection's own headers.

Body: on the same-format fast path only ``model`` (and the stream-usage option) is patched in the raw bytes.
When a gateway-wide request setting is active (``policy``: system prompt, thinking budget) the body goes through
the translator even for the same format, since the translator owns wire formats; the response side of the fast
path is unchanged (bytes pass through, usage is observed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omniroute.v1 import common_pb2, translator_pb2
from omniroute_core import jsonx
from omniroute_core.bytepatch import patch_members
from omniroute_core.crypto import Cipher
from omniroute_core.errors import hub_error
from omniroute_executor.passthrough import PASSTHROUGH, PassthroughSpec, wants_stream_usage
from omniroute_executor.resolve import ResolveError, Target
from omniroute_executor.translate import TranslatorClient

__all__ = ["Credentials", "Prepared", "auth_header", "prepare", "provider_headers"]

# auth style → (header, value template)
_AUTH_HEADER = {
    "bearer": ("Authorization", "Bearer {}"),
    "token": ("Authorization", "Token {}"),  # Deepgram
    "raw": ("Authorization", "{}"),  # AssemblyAI: the key alone
    "x-api-key": ("x-api-key", "{}"),
    "x-goog-api-key": ("x-goog-api-key", "{}"),
    "api-key": ("api-key", "{}"),
}


def auth_header(auth: str, key: str) -> tuple[str, str] | None:
    """The header carrying ``key`` in the provider's ``auth`` style, or None (no key, or ``auth: none``)."""
    style = _AUTH_HEADER.get(auth)
    return (style[0], style[1].format(key)) if key and style else None


def provider_headers(target: Target, key: str, credentials: Credentials) -> dict[str, str]:
    """What every request to ``target`` carries, later ones winning: the catalog's fixed headers, ``key`` in the
    provider's auth style, a provider node's custom headers (decrypted), the connection's own headers.

    ``key`` is passed in (not read from the connection) so a credential that is not stored yet can be tried
    (``POST /api/providers/validate``). Raises :class:`ResolveError` when a node's headers cannot be decrypted."""
    headers = dict(target.provider.headers)
    auth = auth_header(target.provider.auth, key)
    if auth is not None:
        headers[auth[0]] = auth[1]
    headers.update(credentials.secret_headers(target))
    headers.update(target.connection.headers)
    return headers


class Credentials:
    """Decrypted provider keys, cached per ciphertext (an edited key has a new ciphertext, so never stale)."""

    def __init__(self, cipher: Cipher | None) -> None:
        self._cipher = cipher
        self._plain: dict[tuple[str, str], str] = {}
        self._headers: dict[tuple[str, str], Mapping[str, str]] = {}

    def key_for(self, target: Target) -> str:
        token = target.connection.api_key_enc
        if not token:
            return ""
        cache_key = (target.connection.id, token)
        plain = self._plain.get(cache_key)
        if plain is None:
            if self._cipher is None:
                raise ResolveError(hub_error(500, "the executor has no OMNIROUTE_ENCRYPTION_KEY to read credentials"))
            try:
                plain = self._cipher.decrypt(token, aad=target.connection.id)
            except ValueError as exc:
                raise ResolveError(
                    hub_error(500, f"credentials of connection {target.connection.id!r} cannot be decrypted")
                ) from exc
            if len(self._plain) > 10_000:
                self._plain.clear()
            self._plain[cache_key] = plain
        return plain

    def decrypt(self, token: str, aad: str) -> str:
        """A secret of the config itself (a proxy password). Raises ``ValueError`` without a cipher or when the
        token does not decrypt."""
        if self._cipher is None:
            raise ValueError("the executor has no OMNIROUTE_ENCRYPTION_KEY")
        return self._cipher.decrypt(token, aad=aad)

    def secret_headers(self, target: Target) -> Mapping[str, str]:
        """A provider node's custom headers (encrypted with aad = the node id); empty for catalog providers."""
        token = target.secret_headers
        if not token:
            return {}
        cache_key = (target.provider.id, token)
        headers = self._headers.get(cache_key)
        if headers is None:
            if self._cipher is None:
                raise ResolveError(hub_error(500, "the executor has no OMNIROUTE_ENCRYPTION_KEY to read credentials"))
            try:
                doc = jsonx.loads(self._cipher.decrypt(token, aad=target.provider.id))
            except (ValueError, jsonx.JSONDecodeError) as exc:
                raise ResolveError(
                    hub_error(500, f"custom headers of provider node {target.provider.id!r} cannot be decrypted")
                ) from exc
            headers = {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}
            if len(self._headers) > 10_000:
                self._headers.clear()
            self._headers[cache_key] = headers
        return headers


@dataclass(frozen=True, slots=True)
class Prepared:
    target: Target
    url: str
    headers: dict[str, str]
    body: bytes
    passthrough: PassthroughSpec | None  # set on the same-format fast path
    drop_usage_event: bool  # usage reporting was requested on the client's behalf
    client_wants_usage: bool  # the client asked for usage in its stream


async def prepare(
    target: Target,
    meta: common_pb2.RequestMeta,
    body: bytes,
    parsed: dict[str, Any],
    credentials: Credentials,
    translator: TranslatorClient,
    operation_path: str,
    policy: translator_pb2.RequestPolicy | None = None,
) -> Prepared:
    """The provider request for ``target``. Raises :class:`ResolveError` when it cannot be built.

    ``policy``: the active gateway-wide request settings (None: none is active)."""
    path = target.provider.path(
        operation_path, stream=meta.stream, model=target.model, options=target.connection.options
    )
    if path is None:
        raise ResolveError(hub_error(400, f"provider {target.provider.id!r} does not support {operation_path}"))
    if not target.base_url:
        raise ResolveError(
            hub_error(500, f"connection {target.connection.id!r} of provider {target.provider.id!r} has no base URL")
        )
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if meta.stream else "application/json"}
    headers.update(provider_headers(target, credentials.key_for(target), credentials))

    spec = PASSTHROUGH.get(target.provider.format) if target.provider.format == meta.client_format else None
    drop = False
    members = {b"model": jsonx.dumps(target.model)}
    if spec is not None and meta.stream:
        option, asked = wants_stream_usage(spec, body, parsed)
        if option is not None:
            members[spec.stream_usage_option] = option
        drop = not asked
    if spec is not None and policy is None:
        out = patch_members(body, members, parsed)
    else:
        translated = await translator.request(
            meta.client_format, target.provider.format, body, target.model, stream=meta.stream, policy=policy
        )
        if translated.HasField("error"):
            raise ResolveError(translated.error)
        out = translated.body
    options = parsed.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    return Prepared(target, target.base_url + path, headers, out, spec, drop, wants_usage)
