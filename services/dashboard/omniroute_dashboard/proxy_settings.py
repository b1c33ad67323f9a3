"""``/api/settings/proxy``: the outbound HTTP proxy the executor sends provider requests through.

Stored in the ``settings`` row ``proxy`` (so it travels in the config snapshot; its meaning, ``noProxy`` matching
and the choice per request are documented once, in :mod:`omniroute_core.proxies`). Body and ``GET`` shape::

    {"enabled": bool, "url": "http://host:port", "username": str, "password": str (write only),
     "noProxy": ["localhost", "127.0.0.1", "*.internal", "10.0.0.0/8"],
     "providers": {"<provider id>": {"url", "username", "password"} | {"enabled": false}}}

``GET`` never returns a password: it shows ``"hasPassword": true`` instead. Passwords are encrypted at rest with
the credential cipher (AES-GCM, bound to the global proxy or to the provider). ``PUT`` merges: a field left out
keeps its value, ``null`` (or ``""`` for ``url``, ``username``, ``password``) clears it; a provider entry merges
into the stored one, ``null`` removes it, ``{"enabled": false}`` makes that provider go direct.

Refused with 400: unknown fields or wrong types; a proxy URL that is not ``http://`` or ``https://`` (aiohttp,
the executor's client, speaks only those: no SOCKS), that carries credentials (use ``username``/``password``) or
a path, or whose host is link-local or a cloud metadata address (unless ``ALLOW_LINK_LOCAL_PROVIDERS``);
``enabled`` without a URL; a malformed ``noProxy`` CIDR; an unknown provider id.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from omniroute_core.proxies import PROXY_KEY, ProxyConfig, password_aad
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import Context, ContextDep, check_address, check_provider_ids, config_change
from omniroute_dashboard.store import Conn, read_setting, write_setting
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["load_proxy_config", "router"]

router = APIRouter(prefix="/api/settings/proxy", dependencies=[Depends(require_admin)])

_SOCKS = ("socks4", "socks4a", "socks5", "socks5h")
Text = Annotated[StrictStr, Field(max_length=1024)]
NoProxyEntry = Annotated[StrictStr, Field(min_length=1, max_length=253, pattern=r"^[^\s,]+$")]


class _ProviderProxy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool | None = None
    url: Text | None = None
    username: Text | None = None
    password: Text | None = None


class _Proxy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool | None = None
    url: Text | None = None
    username: Text | None = None
    password: Text | None = None
    noProxy: list[NoProxyEntry] | None = Field(default=None, max_length=500)
    providers: dict[Annotated[str, Field(min_length=1, max_length=100)], _ProviderProxy | None] | None = None


def _check_url(ctx: Context, url: str, param: str) -> str:
    """The proxy URL as stored (no trailing slash); ``ApiError(400)`` naming ``param`` when it is unusable."""
    url = url.strip().rstrip("/")
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ApiError(400, f"Invalid request: {param}: {exc}", param=param) from exc
    scheme = parts.scheme.lower()
    if scheme in _SOCKS:
        raise ApiError(
            400,
            f"Invalid request: {param}: {scheme} proxies are not supported; the gateway's HTTP client speaks only "
            "http:// and https:// proxies (HTTPS targets are tunnelled through them with CONNECT)",
            param=param,
        )
    if scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, f"Invalid request: {param}: must be http://host:port or https://host:port", param=param)
    if parts.username is not None or parts.password is not None:
        raise ApiError(400, f"Invalid request: {param}: put credentials in username and password", param=param)
    if parts.path or parts.query or parts.fragment:
        raise ApiError(400, f"Invalid request: {param}: a proxy URL has no path or query", param=param)
    check_address(ctx, url, param)
    return url


def _check_no_proxy(entries: list[str]) -> list[str]:
    for entry in entries:
        if "/" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ApiError(
                    400, f"Invalid request: noProxy: {entry!r} is not a CIDR range", param="noProxy"
                ) from exc
    return entries


def _merge(ctx: Context, stored: dict[str, Any], given: dict[str, Any], provider_id: str, param: str) -> None:
    """Apply the url/username/password fields of ``given`` to ``stored`` (in place)."""
    if "url" in given:
        url = _check_url(ctx, given["url"] or "", param + "url")
        _put(stored, "url", url)
    if "username" in given:
        _put(stored, "username", given["username"] or "")
    if "password" in given:
        password = given["password"] or ""
        _put(stored, "passwordEnc", ctx.cipher.encrypt(password, aad=password_aad(provider_id)) if password else "")


def _put(doc: dict[str, Any], key: str, value: Any) -> None:
    if value in ("", None):
        doc.pop(key, None)
    else:
        doc[key] = value


def _public_entry(entry: dict[str, Any]) -> dict[str, Any]:
    if entry.get("enabled") is False:
        return {"enabled": False}
    return {"url": entry.get("url", ""), "username": entry.get("username", ""), "hasPassword": "passwordEnc" in entry}


def _public(stored: dict[str, Any]) -> dict[str, Any]:
    providers = stored.get("providers")
    return {
        "enabled": stored.get("enabled", False),
        **_public_entry({k: v for k, v in stored.items() if k != "enabled"}),
        "noProxy": list(stored.get("noProxy", [])),
        "providers": {pid: _public_entry(e) for pid, e in (providers or {}).items()},
    }


async def load_proxy_config(conn: Conn, ctx: Context) -> ProxyConfig:
    """The stored proxy settings, parsed with their passwords decrypted (for a proxy test from the dashboard)."""
    stored = await read_setting(conn, PROXY_KEY)
    return ProxyConfig.parse(stored, lambda token, aad: ctx.cipher.decrypt(token, aad=aad))


@router.get("")
async def get_proxy(ctx: ContextDep) -> Response:
    async with ctx.pool.acquire() as conn:
        return json_response(_public(await read_setting(conn, PROXY_KEY)))


@router.put("")
async def put_proxy(request: Request, ctx: ContextDep) -> Response:
    """Merge the given fields (see the module docstring); answers with the result as ``GET`` shows it."""
    body = await parse_body(request, _Proxy)
    given = body.model_dump(exclude_unset=True)
    async with config_change(ctx) as conn:
        await check_provider_ids(ctx, conn, given.get("providers") or {})
        stored = await read_setting(conn, PROXY_KEY, lock=True)
        _merge(ctx, stored, given, "", "")
        if "enabled" in given:
            _put(stored, "enabled", given["enabled"] or None)
        if "noProxy" in given:
            _put(stored, "noProxy", _check_no_proxy(given["noProxy"] or []) or None)
        if stored.get("enabled") and not stored.get("url"):
            raise ApiError(400, "Invalid request: enabled: the proxy needs a url", param="url")
        providers: dict[str, Any] = dict(stored.get("providers") or {})
        for pid, override in (given.get("providers") or {}).items():
            if override is None:
                providers.pop(pid, None)
                continue
            param = f"providers.{pid}."
            if override.get("enabled") is False:
                providers[pid] = {"enabled": False}
                continue
            entry = {k: v for k, v in providers.get(pid, {}).items() if k != "enabled"}
            _merge(ctx, entry, override, pid, param)
            if not entry.get("url"):
                raise ApiError(400, f"Invalid request: {param}url: a provider's proxy needs a url", param=param + "url")
            providers[pid] = entry
        _put(stored, "providers", providers or None)
        await write_setting(conn, PROXY_KEY, stored)
    return json_response(_public(stored))
