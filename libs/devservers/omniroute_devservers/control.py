"""Control-plane helpers for cross-service tests: create providers and keys, wait for the data plane."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx

__all__ = ["make_key", "make_provider", "until_ok"]


async def make_provider(admin: httpx.AsyncClient, provider: str, base_url: str, api_key: str = "sk-up") -> str:
    """POST /api/providers; returns the connection id."""
    body = {"provider": provider, "name": f"{provider}-{uuid.uuid4().hex[:6]}", "apiKey": api_key, "baseUrl": base_url}
    resp = await admin.post("/api/providers", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def make_key(admin: httpx.AsyncClient, scopes: list[str] | None = None) -> tuple[str, str]:
    """POST /api/keys; returns (id, key)."""
    resp = await admin.post("/api/keys", json={"name": f"k-{uuid.uuid4().hex[:6]}", "scopes": scopes or ["chat"]})
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
