"""``/api/keys``: create (shown once), list (never a key or hash), update, delete, scope validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omniroute_core.crypto import hash_api_key

from .conftest import Dashboard
from .test_auth import assert_error


async def test_create_shows_the_key_once_and_stores_only_its_hash(dash: Dashboard) -> None:
    response = await dash.admin.post("/api/keys", json={"name": "app", "scopes": ["chat", "embeddings"]})
    assert response.status_code == 201, response.text
    created = response.json()
    key = created["key"]
    assert key.startswith("sk-omni-")
    assert created["scopes"] == ["chat", "embeddings"]
    assert created["prefix"] == key[:12]
    assert created["revoked"] is False
    assert created["expiresAt"] is None
    assert created["noLog"] is False

    row = await dash.ctx.pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", created["id"])
    assert row is not None
    assert row["key_hash"] == hash_api_key(key)
    assert key not in [str(v) for v in row.values()]

    listed = (await dash.admin.get("/api/keys")).json()
    assert listed["total"] == 1
    (item,) = listed["keys"]
    assert set(item) == {
        "id",
        "name",
        "scopes",
        "prefix",
        "createdAt",
        "revoked",
        "expiresAt",
        "noLog",
        "allowedModels",
        "blockedModels",
        "rateLimits",
        "cachePolicy",
    }
    assert key not in str(listed)
    assert row["key_hash"] not in str(listed)
    single = (await dash.admin.get(f"/api/keys/{created['id']}")).json()
    assert single == item


async def test_defaults_and_options(dash: Dashboard) -> None:
    expires = datetime.now(UTC) + timedelta(days=30)
    created = (
        await dash.admin.post("/api/keys", json={"name": "ci", "expiresAt": expires.isoformat(), "noLog": True})
    ).json()
    assert created["scopes"] == ["*"]
    assert created["noLog"] is True
    assert datetime.fromisoformat(created["expiresAt"]) == expires.replace(microsecond=expires.microsecond)

    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    as_utc = (await dash.admin.post("/api/keys", json={"name": "n", "expiresAt": naive.isoformat()})).json()
    assert datetime.fromisoformat(as_utc["expiresAt"]) == naive.replace(tzinfo=UTC)


async def test_duplicate_scopes_collapse(dash: Dashboard) -> None:
    created = (await dash.admin.post("/api/keys", json={"name": "x", "scopes": ["chat", "chat", "admin"]})).json()
    assert created["scopes"] == ["chat", "admin"]


async def test_update_and_clear_expiry(dash: Dashboard) -> None:
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    key_id = (await dash.admin.post("/api/keys", json={"name": "x", "expiresAt": expires})).json()["id"]
    response = await dash.admin.put(f"/api/keys/{key_id}", json={"name": "y", "scopes": ["audio"], "noLog": True})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["name"], updated["scopes"], updated["noLog"]) == ("y", ["audio"], True)
    assert updated["expiresAt"] is not None
    cleared = (await dash.admin.patch(f"/api/keys/{key_id}", json={"expiresAt": None})).json()
    assert cleared["expiresAt"] is None
    assert cleared["name"] == "y"


async def test_delete(dash: Dashboard) -> None:
    key_id = (await dash.admin.post("/api/keys", json={"name": "x"})).json()["id"]
    assert (await dash.admin.delete(f"/api/keys/{key_id}")).status_code == 200
    assert (await dash.admin.get("/api/keys")).json()["total"] == 0
    assert_error(await dash.admin.delete(f"/api/keys/{key_id}"), 404, "not_found_error")


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_unknown_id_is_404(dash: Dashboard, method: str) -> None:
    assert_error(await dash.admin.request(method, "/api/keys/nope", json={"name": "x"}), 404, "not_found_error")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "x", "scopes": "admin"}, "scopes"),
        ({"name": "x", "scopes": [1]}, "scopes"),
        ({"name": "x", "expiresAt": "tomorrow"}, "expiresAt"),
        ({"name": "x", "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ({"name": "x", "noLog": "true"}, "noLog"),
    ],
)
async def test_invalid_create_is_400(dash: Dashboard, body: dict[str, Any], field: str) -> None:
    response = await dash.admin.post("/api/keys", json=body)
    assert_error(response, 400, "invalid_request_error")
    assert field in response.json()["error"]["message"]
    assert (await dash.admin.get("/api/keys")).json()["total"] == 0


async def test_malformed_json_is_400(dash: Dashboard) -> None:
    response = await dash.admin.post("/api/keys", content=b"{", headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request_error")
