"""``/api/settings/routing``: account selection and retry/fallback defaults, merged, validated and published."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_dashboard.routing_settings import DEFAULTS
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error


async def test_defaults_then_merged_updates_reach_the_snapshot(dash: Dashboard) -> None:
    assert (await dash.admin.get("/api/settings/routing")).json() == {**DEFAULTS, "providers": {}}
    resp = await dash.admin.put(
        "/api/settings/routing",
        json={"accountStrategy": "round-robin", "stickyLimit": 3, "maxRetries": 2,
              "providers": {"openai": {"accountStrategy": "p2c"}}},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["accountStrategy"] == "round-robin"
    more = {"timeoutMs": 30_000, "providers": {"openai": {"stickyLimit": 5}, "groq": {"accountStrategy": "random"}}}
    merged = (await dash.admin.put("/api/settings/routing", json=more)).json()
    assert merged == {
        **DEFAULTS,
        "accountStrategy": "round-robin",
        "stickyLimit": 3,
        "maxRetries": 2,
        "timeoutMs": 30_000,
        "providers": {"openai": {"accountStrategy": "p2c", "stickyLimit": 5}, "groq": {"accountStrategy": "random"}},
    }
    assert (await dash.admin.get("/api/settings/routing")).json() == merged
    snap = await load_snapshot(dash.ctx.pool)
    assert snap.settings["routing"]["providers"]["openai"] == {"accountStrategy": "p2c", "stickyLimit": 5}

    removal = {"stickyLimit": None, "providers": {"groq": None, "openai": {"stickyLimit": None}}}
    cleared = (await dash.admin.put("/api/settings/routing", json=removal)).json()
    assert cleared["stickyLimit"] == DEFAULTS["stickyLimit"]
    assert cleared["providers"] == {"openai": {"accountStrategy": "p2c"}}


@pytest.mark.parametrize(
    "body",
    [
        {"accountStrategy": "fastest"},
        {"stickyLimit": 0},
        {"maxRetries": 11},
        {"maxAttempts": 0},
        {"timeoutMs": -1},
        {"retryDelayMs": "250"},
        {"providers": {"openai": {"accountStrategy": "nope"}}},
        {"providers": {"openai": {"weight": 2}}},
        {"providers": {"openai": {"maxConcurrent": 0}}},
        {"providers": {"openai": {"maxQueued": -1}}},
        {"providers": {"openai": {"queueTimeoutMs": "1000"}}},
        {"providers": {"no-such-provider": {"accountStrategy": "random"}}},
        {"retries": 1},
        ["round-robin"],
    ],
)
async def test_bad_routing_settings_are_400(dash: Dashboard, body: Any) -> None:
    assert_error(await dash.admin.put("/api/settings/routing", json=body), 400, "invalid_request_error")
    assert (await dash.admin.get("/api/settings/routing")).json() == {**DEFAULTS, "providers": {}}


async def test_per_provider_concurrency_queue_limits(dash: Dashboard) -> None:
    limits = {"maxConcurrent": 1, "maxQueued": 0, "queueTimeoutMs": 2500}
    resp = await dash.admin.put("/api/settings/routing", json={"providers": {"openai": limits}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["providers"] == {"openai": limits}
    snap = await load_snapshot(dash.ctx.pool)
    assert snap.settings["routing"]["providers"]["openai"] == limits


async def test_routing_settings_need_a_login(dash: Dashboard) -> None:
    assert_error(await dash.client.get("/api/settings/routing"), 401, "authentication_error")
    assert_error(await dash.client.put("/api/settings/routing", json={"maxRetries": 1}), 401, "authentication_error")
