"""``/api/settings/ip-filter`` and ``/api/rate-limit``: validation, merge, and publication in the snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error


async def test_ip_filter_defaults_merge_and_snapshot(dash: Dashboard) -> None:
    assert (await dash.admin.get("/api/settings/ip-filter")).json() == {
        "enabled": False,
        "allowlist": [],
        "blocklist": [],
    }
    put = await dash.admin.put(
        "/api/settings/ip-filter", json={"enabled": True, "allowlist": ["10.1.2.3/8", "127.0.0.1", "::1"]}
    )
    assert put.status_code == 200, put.text
    assert put.json() == {"enabled": True, "allowlist": ["10.0.0.0/8", "127.0.0.1/32", "::1/128"], "blocklist": []}
    merged = (await dash.admin.put("/api/settings/ip-filter", json={"blocklist": ["8.8.8.8"]})).json()
    assert merged["allowlist"] == ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
    assert merged["blocklist"] == ["8.8.8.8/32"]
    assert (await dash.admin.get("/api/settings/ip-filter")).json() == merged
    snap = await load_snapshot(dash.ctx.pool)
    assert snap.settings["ipFilter"] == merged


@pytest.mark.parametrize(
    "body",
    [
        {"allowlist": ["10.0.0.300"]},
        {"allowlist": "10.0.0.1"},
        {"blocklist": ["1.2.3.4/33"]},
        {"enabled": "yes"},
        {"allow": []},
    ],
)
async def test_ip_filter_rejects_bad_input(dash: Dashboard, body: dict[str, Any]) -> None:
    assert_error(await dash.admin.put("/api/settings/ip-filter", json=body), 400, "invalid_request_error")


async def test_rate_limit_configuration(dash: Dashboard) -> None:
    shown = (await dash.admin.get("/api/rate-limit")).json()
    assert shown["defaults"] == {"rpm": None, "tpm": None, "concurrent": None}
    assert shown["windowMs"] == 60_000
    assert shown["keysWithOwnLimits"] == 0
    await dash.admin.post("/api/keys", json={"name": "l", "rateLimits": {"rpm": 3}})
    put = await dash.admin.put("/api/rate-limit", json={"defaults": {"rpm": 100, "concurrent": 5}})
    assert put.status_code == 200, put.text
    assert put.json()["defaults"] == {"rpm": 100, "tpm": None, "concurrent": 5}
    assert put.json()["keysWithOwnLimits"] == 1
    snap = await load_snapshot(dash.ctx.pool)
    assert snap.settings["rateLimit"] == {"defaults": {"rpm": 100, "concurrent": 5}}
    for bad in ({"defaults": {"rpm": 0}}, {"defaults": {"rps": 1}}, {}):
        assert_error(await dash.admin.put("/api/rate-limit", json=bad), 400, "invalid_request_error")


async def test_admin_only(dash: Dashboard) -> None:
    assert (await dash.client.get("/api/rate-limit")).status_code == 401
    assert (await dash.client.put("/api/settings/ip-filter", json={"enabled": True})).status_code == 401
