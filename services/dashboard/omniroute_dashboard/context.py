"""What the request handlers need, built once in the app lifespan and injected with ``Annotated`` dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from omniroute_core.catalog import Catalog, load_catalog
from omniroute_core.crypto import Cipher
from omniroute_core.netguard import refused_url
from omniroute_dashboard.metrics import DashboardMetrics
from omniroute_dashboard.publish import Publisher
from omniroute_dashboard.settings import DashboardSettings
from omniroute_dashboard.store import Conn, Pool, bump_version
from omniroute_dashboard.web import ApiError

__all__ = [
    "Context",
    "ContextDep",
    "StartupError",
    "build_cipher",
    "check_address",
    "check_provider_ids",
    "config_change",
    "get_context",
]


class StartupError(RuntimeError):
    """A configuration problem that must stop the service before it serves anything."""


@dataclass(frozen=True, slots=True)
class Context:
    settings: DashboardSettings
    pool: Pool
    cipher: Cipher
    publisher: Publisher
    metrics: DashboardMetrics
    redis: Redis  # shared with the data plane: caches, idempotency keys
    catalog: Catalog = field(default_factory=load_catalog)  # the provider catalog the data plane routes with


def build_cipher(settings: DashboardSettings) -> Cipher:
    """The credential cipher. Raises ``StartupError`` with an actionable message when the key is unusable."""
    if not settings.omniroute_encryption_key:
        raise StartupError(
            "OMNIROUTE_ENCRYPTION_KEY is not set: provider credentials are encrypted with it. Generate one with "
            "`python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'` and keep it: "
            "stored credentials cannot be decrypted without the same key."
        )
    try:
        return Cipher(settings.omniroute_encryption_key)
    except ValueError as exc:
        raise StartupError(f"OMNIROUTE_ENCRYPTION_KEY is invalid: {exc} (base64 of 32 random bytes)") from exc


def get_context(request: Request) -> Context:
    ctx = request.app.state.ctx
    assert isinstance(ctx, Context), "the app lifespan did not run"
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]


@asynccontextmanager
async def config_change(ctx: Context) -> AsyncIterator[Conn]:
    """A transaction for one configuration change.

    The config version is bumped inside the same transaction (after the caller's statements), and after commit
    the new version is announced to the data plane; an exception rolls everything back and announces nothing.
    """
    async with ctx.pool.acquire() as conn, conn.transaction():
        yield conn
        version = await bump_version(conn)
    await ctx.publisher.announce(version, ctx.settings.publish_wait_s)


def check_address(ctx: Context, url: str, param: str) -> None:
    """Raise ``ApiError(400)`` when ``url`` (a provider base URL or a proxy URL) is refused by the link-local /
    cloud metadata guard (:mod:`omniroute_core.netguard`; off with ``ALLOW_LINK_LOCAL_PROVIDERS``)."""
    if not url:
        return
    reason = refused_url(url, allow=ctx.settings.allow_link_local_providers)
    if reason is not None:
        raise ApiError(400, f"Invalid request: {param}: {reason}", param=param, code="address_refused")


async def check_provider_ids(ctx: Context, conn: Conn, names: Iterable[str]) -> None:
    """Raise ``ApiError(400)`` naming every one of ``names`` that is neither a catalog provider nor a provider node
    (settings keyed by provider id refuse a typo rather than store a rule that never applies)."""
    named = set(names)
    if not named:
        return
    nodes = {r["id"] for r in await conn.fetch("SELECT id FROM provider_nodes WHERE id = ANY($1)", list(named))}
    unknown = sorted(named - set(ctx.catalog.providers) - nodes)
    if unknown:
        raise ApiError(400, f"Invalid request: providers: unknown provider(s) {unknown}", param="providers")
