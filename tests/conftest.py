"""Cross-service fixtures: a logged-in control-plane client and a fake OpenAI upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from omniroute_devservers.control import make_provider
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.suite import TEST_PASSWORD, Suite


@pytest.fixture(scope="session")
async def admin(suite: Suite) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the edge, logged in to the dashboard (the auth_token cookie is kept)."""
    async with httpx.AsyncClient(base_url=suite.edge_url, timeout=10) as client:
        resp = await client.post("/api/auth/login", json={"password": TEST_PASSWORD})
        assert resp.status_code == 200, resp.text
        yield client


UPSTREAM_KEY = "sk-upstream-key"


@pytest.fixture(scope="session")
async def fake_openai(admin: httpx.AsyncClient) -> AsyncIterator[FakeOpenAI]:
    """The session's fake OpenAI upstream, registered once as the suite's only 'openai' connection."""
    fake = FakeOpenAI()
    await fake.start()
    try:
        await make_provider(admin, "openai", fake.base_url, api_key=UPSTREAM_KEY)
        yield fake
    finally:
        await fake.stop()
