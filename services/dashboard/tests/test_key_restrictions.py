"""Key restrictions on ``/api/keys``: model patterns and rate limits are validated, stored and published."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_core.snapshot import RateLimits
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error


async def test_restrictions_round_trip_and_reach_the_snapshot(dash: Dashboard) -> None:
    body = {
        "name": "limited",
        "allowedModels": ["openai/*", " anthropic/claude-* ", "openai/*"],
        "blockedModels": ["openai/gpt-4o"],
        "rateLimits": {"rpm": 10, "concurrent": 2},
    }
    created = (await dash.admin.post("/api/keys", json=body)).json()
    assert created["allowedModels"] == ["openai/*", "anthropic/claude-*"]
    assert created["blockedModels"] == ["openai/gpt-4o"]
    assert created["rateLimits"] == {"rpm": 10, "tpm": None, "concurrent": 2}

    snap = await load_snapshot(dash.ctx.pool)
    (key,) = [k for k in snap.api_keys if k.id == created["id"]]
    assert key.allowed_models == ("openai/*", "anthropic/claude-*")
    assert key.rate_limits == RateLimits(rpm=10, concurrent=2)


async def test_defaults_are_unrestricted(dash: Dashboard) -> None:
    created = (await dash.admin.post("/api/keys", json={"name": "free"})).json()
    assert created["allowedModels"] == created["blockedModels"] == []
    assert created["rateLimits"] == {"rpm": None, "tpm": None, "concurrent": None}


async def test_patch_replaces_lists_and_limits_and_leaves_the_rest(dash: Dashboard) -> None:
    body = {"name": "k", "allowedModels": ["a/*"], "rateLimits": {"rpm": 5}}
    key_id = (await dash.admin.post("/api/keys", json=body)).json()["id"]
    patched = (await dash.admin.patch(f"/api/keys/{key_id}", json={"blockedModels": ["a/b"]})).json()
    assert patched["allowedModels"] == ["a/*"]
    assert patched["blockedModels"] == ["a/b"]
    assert patched["rateLimits"]["rpm"] == 5
    patched = (await dash.admin.patch(f"/api/keys/{key_id}", json={"rateLimits": {"tpm": 1000}})).json()
    assert patched["rateLimits"] == {"rpm": None, "tpm": 1000, "concurrent": None}
    cleared = (await dash.admin.patch(f"/api/keys/{key_id}", json={"rateLimits": None, "allowedModels": []})).json()
    assert cleared["rateLimits"] == {"rpm": None, "tpm": None, "concurrent": None}
    assert cleared["allowedModels"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowedModels", "openai/*"),
        ("allowedModels", [""]),
        ("blockedModels", [3]),
        ("rateLimits", {"rpm": 0}),
        ("rateLimits", {"rpm": "10"}),
        ("rateLimits", {"rps": 10}),
        ("rateLimits", [10]),
    ],
)
async def test_bad_restrictions_are_400(dash: Dashboard, field: str, value: Any) -> None:
    response = await dash.admin.post("/api/keys", json={"name": "bad", field: value})
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["param"].startswith(field)
    key_id = (await dash.admin.post("/api/keys", json={"name": "ok"})).json()["id"]
    assert_error(await dash.admin.patch(f"/api/keys/{key_id}", json={field: value}), 400, "invalid_request_error")


def test_snapshots_without_restrictions_still_parse() -> None:
    from omniroute_core.snapshot import parse_snapshot

    old = b'{"version": 3, "apiKeys": [{"id": "k", "keyHash": "h", "scopes": ["chat"]}]}'
    (key,) = parse_snapshot(old).api_keys
    assert key.allowed_models == key.blocked_models == ()
    assert not key.rate_limits.any
    assert parse_snapshot(parse_snapshot(old).to_json()).api_keys == (key,)


async def test_cache_policy_per_key_round_trips_and_clears(dash: Dashboard) -> None:
    created = (await dash.admin.post("/api/keys", json={"name": "c", "cachePolicy": "always"})).json()
    assert created["cachePolicy"] == "always"
    assert (await dash.admin.post("/api/keys", json={"name": "d"})).json()["cachePolicy"] is None
    key_id = created["id"]
    snap = await load_snapshot(dash.ctx.pool)
    assert next(k for k in snap.api_keys if k.id == key_id).cache_policy == "always"
    kept = (await dash.admin.patch(f"/api/keys/{key_id}", json={"name": "c2"})).json()
    assert kept["cachePolicy"] == "always"
    never = (await dash.admin.patch(f"/api/keys/{key_id}", json={"cachePolicy": "never"})).json()
    assert never["cachePolicy"] == "never"
    cleared = (await dash.admin.patch(f"/api/keys/{key_id}", json={"cachePolicy": None})).json()
    assert cleared["cachePolicy"] is None
    snap = await load_snapshot(dash.ctx.pool)
    assert next(k for k in snap.api_keys if k.id == key_id).cache_policy == ""


@pytest.mark.parametrize("value", ["sometimes", "", 1, ["always"]])
async def test_bad_cache_policy_is_400(dash: Dashboard, value: Any) -> None:
    response = await dash.admin.post("/api/keys", json={"name": "bad", "cachePolicy": value})
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["param"].startswith("cachePolicy")


def test_snapshots_keep_the_cache_policy_and_ignore_unknown_ones() -> None:
    from omniroute_core.snapshot import parse_snapshot

    doc = b'{"version": 3, "apiKeys": [{"id": "a", "keyHash": "h", "cachePolicy": "never"},' \
          b' {"id": "b", "keyHash": "i", "cachePolicy": "whenever"}]}'  # fmt: skip
    a, b = parse_snapshot(doc).api_keys
    assert (a.cache_policy, b.cache_policy) == ("never", "")
    assert parse_snapshot(parse_snapshot(doc).to_json()).api_keys == (a, b)


async def test_the_gateway_cache_setting(dash: Dashboard) -> None:
    assert (await dash.admin.get("/api/settings/cache")).json() == {"policy": "deterministic"}
    resp = await dash.admin.put("/api/settings/cache", json={"policy": "always"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"policy": "always"}
    assert (await dash.admin.get("/api/settings/cache")).json() == {"policy": "always"}
    snap = await load_snapshot(dash.ctx.pool)
    assert snap.settings["cache"] == {"policy": "always"}
    for bad in ({"policy": "maybe"}, {}, {"policy": "never", "ttl": 5}, ["always"]):
        assert_error(await dash.admin.put("/api/settings/cache", json=bad), 400, "invalid_request_error")
    assert_error(await dash.client.get("/api/settings/cache"), 401, "authentication_error")
    assert_error(await dash.client.put("/api/settings/cache", json={"policy": "never"}), 401, "authentication_error")
