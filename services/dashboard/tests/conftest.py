"""Fixtures: a dashboard app per test on a fresh PostgreSQL database and the session's NATS, driven in-process
through its lifespan and ``httpx.ASGITransport``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from omniroute_core.crypto import generate_encryption_key
from omniroute_dashboard.app import create_app
from omniroute_dashboard.context import Context
from omniroute_dashboard.settings import DashboardSettings

PASSWORD = "correct horse battery staple"
BASE_URL = "http://dashboard.test"


@dataclass
class Dashboard:
    app: FastAPI
    ctx: Context
    client: httpx.AsyncClient  # no credentials
    admin: httpx.AsyncClient  # logged in (session cookie in its jar)

    def new_client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, **kwargs)  # type: ignore[arg-type]


def make_settings(database_url: str, nats_url: str, **overrides: object) -> DashboardSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "omniroute_encryption_key": generate_encryption_key(),
        "initial_password": PASSWORD,
        "omniroute_data_dir": None,
        "metrics_port": 0,
        "cookie_secure": False,
    }
    values.update(overrides)
    return DashboardSettings.model_validate(values)


@pytest.fixture
def settings(pg_database: str, nats_url: str) -> DashboardSettings:
    return make_settings(pg_database, nats_url)


async def start(settings: DashboardSettings) -> AsyncIterator[Dashboard]:
    """Run one app through its lifespan and yield it with an anonymous and a logged-in client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        assert isinstance(ctx, Context)
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as admin,
        ):
            if settings.initial_password:
                response = await admin.post("/api/auth/login", json={"password": settings.initial_password})
                assert response.status_code == 200, response.text
            yield Dashboard(app, ctx, client, admin)


@pytest.fixture
async def dash(settings: DashboardSettings) -> AsyncIterator[Dashboard]:
    async for running in start(settings):
        yield running
