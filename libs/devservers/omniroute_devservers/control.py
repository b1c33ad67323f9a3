"""Control-plane helpers for cross-service tests: create providers and keys, wait for the data plane."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx

__all__ = ["config_synced", "make_key", "make_provider", "until_ok"]


async def make_provider(admin: httpx.AsyncClient, provider: str, base_url: str, api_key: str = "sk-up") -> str:
    """POST /api/providers; returns the connection id."""
    body = {"provider": provider, "name": f"{provider}-{uuid.uuid4().hex[:6]}", "apiKey": api_key, "baseUrl": base_url}
    resp = await admin.post("/api/providers", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def make_key(admin: httpx.AsyncClient, scopes: list[str] | None = None, **fields: object) -> tuple[str, str]:
    """POST /api/keys (``fields`` are more of its JSON fields, e.g. ``cachePolicy``); returns (id, key)."""
    body = {"name": f"k-{uuid.uuid4().hex[:6]}", "scopes": scopes or ["chat"], **fields}
    resp = await admin.post("/api/keys", json=body)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return str(body["id"]), str(body["key"])


async def until_ok(fn: Callable[[], Awaitable[object]], timeout: float) -> float:
    """Retry ``fn`` until it stops raising; returns the seconds it took. Re-raises after ``timeout``."""
    start = time.monotonic()
    while True:
        try:
            await fn()
            return time.monotonic() - start
        except Exception:
            if time.monotonic() - start > timeout:
                raise
            await asyncio.sleep(0.02)


async def config_synced(admin: httpx.AsyncClient, edge_urls: list[str], timeout: float = 5.0) -> None:
    """Wait until every edge serves the configuration version the dashboard has published.

    An edge that does not require API keys answers an unknown key as anonymous, so a request succeeding proves
    nothing about whether a new key (and its scope, limits and cache partition) has reached it; this does.
    """
    health = await admin.get("/api/monitoring/health")
    assert health.status_code == 200, health.text
    target = int(health.json()["configVersion"])
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        for url in edge_urls:
            while True:
                version = int((await http.get(url + "/health")).json()["configVersion"])
                if version >= target:
                    break
                assert time.monotonic() < deadline, f"{url} still at config version {version} < {target}"
                await asyncio.sleep(0.02)
