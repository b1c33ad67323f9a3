"""``POST /api/settings/proxy/test``: one real request through an outbound HTTP proxy, made by the executor.

Body: ``{"url": "http://host:port", "username"?, "password"?, "testUrl"?}``, or OmniRoute's shape ``{"proxy":
{"type": "http"|"https", "host", "port", "username"?, "password"?}, "testUrl"?}``, or neither to test the saved
gateway-wide proxy (``/api/settings/proxy``; 400 when none is enabled). Separate credentials win over ones
inside ``url``. The proxy and ``testUrl`` hosts go through the link-local / metadata guard (400). ``testUrl``
defaults to the catalog's OpenAI model list (an unauthenticated request: any HTTP answer, a 401 included,
proves the path works). Only HTTP(S) proxies are supported (400 otherwise).

Answer: ``{"success", "latencyMs", "status"?, "error"?, "proxyUrl" (password masked), "testUrl"}``; a proxy that
cannot be reached or refuses the credentials is ``success: false`` with a 200, not an error.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator
from pydantic.alias_generators import to_camel

from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, check_address
from omniroute_dashboard.executor_admin import AdminDep, call_admin
from omniroute_dashboard.proxy_settings import load_proxy_config
from omniroute_dashboard.web import ApiError, json_response, parse_body

__all__ = ["proxy_url", "router"]

router = APIRouter(prefix="/api/settings/proxy", dependencies=[Depends(require_admin)])

_SCHEMES = ("http", "https")
_FALLBACK_TEST_URL = "https://api.openai.com/v1/models"


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise ValueError("must be an http(s) URL such as http://proxy.internal:3128")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"invalid port ({exc})") from exc
    return value.strip()


def _host(value: str) -> str:
    """A host name or IP literal, IPv6 with or without its brackets (stored without them)."""
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(c.isspace() or c in "/@?#[]" for c in host):
        raise ValueError("must be a host name or IP address, without a scheme, path or credentials")
    return host


HttpUrl = Annotated[StrictStr, Field(max_length=2048), AfterValidator(_http_url)]
Host = Annotated[StrictStr, Field(min_length=1, max_length=253), AfterValidator(_host)]
Part = Annotated[StrictStr, Field(max_length=512)]


class _Parts(BaseModel):
    """OmniRoute's ``proxy`` object; the port may be a string of digits, as its UI sends it."""

    model_config = ConfigDict(extra="ignore")
    type: StrictStr = "http"
    host: Host
    port: StrictInt | Annotated[StrictStr, Field(pattern=r"^[0-9]{1,5}$")]
    username: Part = ""
    password: Part = ""


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)
    url: HttpUrl | None = None
    proxy: _Parts | None = None
    username: Part = ""
    password: Part = ""
    test_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _one_proxy(self) -> _Body:
        if self.url is not None and self.proxy is not None:
            raise ValueError("give the proxy as 'url' or as a 'proxy' object, not both")
        return self


def proxy_url(body: _Body) -> str:
    """The proxy as one URL with its credentials in the userinfo (percent-encoded). Raises ``ApiError(400)``."""
    if body.proxy is not None:
        parts = body.proxy
        port = int(parts.port)
        if parts.type.lower() not in _SCHEMES:
            raise ApiError(400, "only http and https proxies are supported", param="proxy.type")
        if not 0 < port < 65536:
            raise ApiError(400, "port must be between 1 and 65535", param="proxy.port")
        host = f"[{parts.host}]" if ":" in parts.host else parts.host
        base = f"{parts.type.lower()}://{host}:{port}"
        username, password = body.username or parts.username, body.password or parts.password
    else:
        assert body.url is not None
        split = urlsplit(body.url)
        host = f"[{split.hostname}]" if split.hostname and ":" in split.hostname else split.hostname or ""
        netloc = f"{host}:{split.port}" if split.port else host
        base = urlunsplit((split.scheme, netloc, split.path, "", ""))
        # userinfo in a URL is percent-encoded: decode it, as it is encoded again below
        username = body.username or unquote(split.username or "")
        password = body.password or unquote(split.password or "")
    if not username and not password:
        return base
    split = urlsplit(base)
    userinfo = quote(username, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit((split.scheme, f"{userinfo}@{split.netloc}", split.path, "", ""))


def _masked(url: str) -> str:
    split = urlsplit(url)
    if split.password is None:
        return url
    netloc = split.netloc.rsplit("@", 1)[1]
    return urlunsplit((split.scheme, f"{split.username}:***@{netloc}", split.path, "", ""))


@router.post("/test")
async def check_proxy(request: Request, ctx: ContextDep, stub: AdminDep) -> Response:
    """Make one request through the proxy; 400 for a malformed body."""
    body = await parse_body(request, _Body)
    if body.url is None and body.proxy is None:
        async with ctx.pool.acquire() as conn:
            saved = (await load_proxy_config(conn, ctx)).default
        if saved is None:
            raise ApiError(
                400, "no proxy given and no gateway-wide proxy is enabled in /api/settings/proxy", param="url"
            )
        url = saved  # its credentials are already in it, percent-encoded
    else:
        url = proxy_url(body)
    check_address(ctx, url, "url")
    check_address(ctx, body.test_url or "", "testUrl")
    openai = ctx.catalog.providers.get("openai")
    default = openai.base_url + openai.paths["models"] if openai and "models" in openai.paths else ""
    test_url = body.test_url or default or _FALLBACK_TEST_URL
    result = await call_admin(stub.TestProxy, {"proxyUrl": url, "testUrl": test_url})
    return json_response({**result, "proxyUrl": _masked(url), "testUrl": test_url})
