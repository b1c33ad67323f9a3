"""Building the provider request for one attempt: URL, auth headers and body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.bytepatch import patch_members
from omniroute_core.crypto import Cipher
from omniroute_core.errors import hub_error
from omniroute_executor.passthrough import PASSTHROUGH, PassthroughSpec, wants_stream_usage
from omniroute_executor.resolve import ResolveError, Target
from omniroute_executor.translate import TranslatorClient

__all__ = ["Credentials", "Prepared", "auth_header", "prepare"]

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


class Credentials:
    """Decrypted provider keys, cached per ciphertext (an edited key has a new ciphertext, so never stale)."""

    def __init__(self, cipher: Cipher | None) -> None:
        self._cipher = cipher
        self._plain: dict[tuple[str, str], str] = {}

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
) -> Prepared:
    """The provider request for ``target``. Raises :class:`ResolveError` when it cannot be built."""
    path = target.provider.path(operation_path, stream=meta.stream, model=target.model)
    if path is None:
        raise ResolveError(hub_error(400, f"provider {target.provider.id!r} does not support {operation_path}"))
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if meta.stream else "application/json"}
    headers.update(target.provider.headers)
    auth = auth_header(target.provider.auth, credentials.key_for(target))
    if auth is not None:
        headers[auth[0]] = auth[1]
    headers.update(target.connection.headers)

    spec = PASSTHROUGH.get(target.provider.format) if target.provider.format == meta.client_format else None
    drop = False
    if spec is not None:
        members = {b"model": jsonx.dumps(target.model)}
        if meta.stream:
            option, asked = wants_stream_usage(spec, body, parsed)
            if option is not None:
                members[spec.stream_usage_option] = option
            drop = not asked
        out = patch_members(body, members)
    else:
        translated = await translator.request(
            meta.client_format, target.provider.format, body, target.model, stream=meta.stream
        )
        if translated.HasField("error"):
            raise ResolveError(translated.error)
        out = translated.body
    options = parsed.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    return Prepared(target, target.base_url + path, headers, out, spec, drop, wants_usage)
