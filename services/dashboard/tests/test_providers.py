"""``/api/providers``: CRUD, masking, validation and encryption at rest."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_dashboard.fields import mask_secret
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error

SECRET = "sk-live-0123456789abcdefWXYZ"


async def create(dash: Dashboard, **fields: Any) -> dict[str, Any]:
    body = {"provider": "openai", "name": "main", "apiKey": SECRET, "baseUrl": "https://api.openai.com/v1"}
    body.update(fields)
    response = await dash.admin.post("/api/providers", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_mask_secret() -> None:
    assert mask_secret("") == ""
    assert mask_secret("short") == "****"
    assert mask_secret("sk-abcdefghijklmnop1234") == "sk-...1234"


async def test_create_then_read_back_masked(dash: Dashboard) -> None:
    created = await create(dash, priority=3, headers={"X-Org": "acme", "Authorization": "Bearer very-secret-token"})
    connection_id = created["id"]
    assert created["connection"]["id"] == connection_id

    listed = (await dash.admin.get("/api/providers")).json()
    assert listed["total"] == 1
    (item,) = listed["connections"]
    assert item["apiKey"] == "sk-...WXYZ"
    assert item == {
        "id": connection_id,
        "provider": "openai",
        "name": "main",
        "baseUrl": "https://api.openai.com/v1",
        "apiKey": "sk-...WXYZ",
        "priority": 3,
        "isActive": True,
        "headers": {"X-Org": "acme", "Authorization": "Bea...oken"},
        "options": {},
        "createdAt": item["createdAt"],
        "updatedAt": item["updatedAt"],
        "testStatus": "unknown",
        "lastTested": None,
        "lastError": None,
    }
    single = await dash.admin.get(f"/api/providers/{connection_id}")
    assert single.status_code == 200
    assert single.json()["connection"] == item
    for response_text in (listed, single.text, created):
        assert SECRET not in str(response_text)
        assert "very-secret-token" not in str(response_text)


async def test_filter_by_provider(dash: Dashboard) -> None:
    await create(dash)
    await create(dash, provider="anthropic", name="claude", baseUrl="")
    only = (await dash.admin.get("/api/providers", params={"provider": "anthropic"})).json()
    assert [c["provider"] for c in only["connections"]] == ["anthropic"]
    assert only["connections"][0]["baseUrl"] == ""


async def stored_headers(dash: Dashboard, connection_id: str) -> dict[str, str]:
    stored: dict[str, str] = await dash.ctx.pool.fetchval(
        "SELECT headers FROM provider_connections WHERE id = $1", connection_id
    )
    return stored


async def test_sending_back_what_get_showed_keeps_secret_headers(dash: Dashboard) -> None:
    headers = {"X-Org": "acme", "Authorization": "Bearer very-secret-token", "X-Custom-Token": "tok-0123456789abcdef"}
    connection_id = (await create(dash, headers=headers))["id"]
    shown = (await dash.admin.get(f"/api/providers/{connection_id}")).json()["connection"]
    # every credential-like header is masked, not only the well-known names
    assert shown["headers"] == {"X-Org": "acme", "Authorization": "Bea...oken", "X-Custom-Token": "tok...cdef"}
    # an editor that PUTs the whole object back, with one header changed, must not store the masks
    edited = {**shown["headers"], "X-Org": "umbrella"}
    response = await dash.admin.put(f"/api/providers/{connection_id}", json={"name": "renamed", "headers": edited})
    assert response.status_code == 200, response.text
    assert await stored_headers(dash, connection_id) == {**headers, "X-Org": "umbrella"}
    # a new value replaces the secret
    replaced = {**edited, "Authorization": "Bearer rotated-secret-value"}
    await dash.admin.put(f"/api/providers/{connection_id}", json={"headers": replaced})
    assert (await stored_headers(dash, connection_id))["Authorization"] == "Bearer rotated-secret-value"


async def test_api_key_is_encrypted_at_rest_bound_to_the_row(dash: Dashboard) -> None:
    connection_id = (await create(dash))["id"]
    other_id = (await create(dash, name="second"))["id"]
    stored = await dash.ctx.pool.fetchval("SELECT api_key_enc FROM provider_connections WHERE id = $1", connection_id)
    assert SECRET not in stored
    assert stored.startswith("v1:")
    assert dash.ctx.cipher.decrypt(stored, aad=connection_id) == SECRET
    with pytest.raises(ValueError, match="authenticate"):
        dash.ctx.cipher.decrypt(stored, aad=other_id)


async def test_update_is_partial_and_keeps_the_key(dash: Dashboard) -> None:
    connection_id = (await create(dash, headers={"X-Org": "acme"}))["id"]
    response = await dash.admin.put(f"/api/providers/{connection_id}", json={"name": "renamed", "isActive": False})
    assert response.status_code == 200, response.text
    updated = response.json()["connection"]
    assert updated["name"] == "renamed"
    assert updated["isActive"] is False
    assert updated["apiKey"] == "sk-...WXYZ"
    assert updated["headers"] == {"X-Org": "acme"}
    assert updated["baseUrl"] == "https://api.openai.com/v1"

    new_secret = "sk-rotated-9876543210zyxw"
    rotated = await dash.admin.put(f"/api/providers/{connection_id}", json={"apiKey": new_secret, "priority": 7})
    assert rotated.json()["connection"]["apiKey"] == "sk-...zyxw"
    assert rotated.json()["connection"]["priority"] == 7
    stored = await dash.ctx.pool.fetchval("SELECT api_key_enc FROM provider_connections WHERE id = $1", connection_id)
    assert dash.ctx.cipher.decrypt(stored, aad=connection_id) == new_secret

    cleared = await dash.admin.put(f"/api/providers/{connection_id}", json={"apiKey": "", "baseUrl": ""})
    assert cleared.json()["connection"]["apiKey"] == ""
    assert cleared.json()["connection"]["baseUrl"] == ""


async def test_delete(dash: Dashboard) -> None:
    connection_id = (await create(dash))["id"]
    response = await dash.admin.delete(f"/api/providers/{connection_id}")
    assert response.status_code == 200
    assert_error(await dash.admin.get(f"/api/providers/{connection_id}"), 404, "not_found_error")
    assert (await dash.admin.get("/api/providers")).json()["total"] == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_unknown_id_is_404(dash: Dashboard, method: str) -> None:
    response = await dash.admin.request(method, "/api/providers/does-not-exist", json={"name": "x"})
    assert_error(response, 404, "not_found_error")


async def test_failed_update_changes_nothing(dash: Dashboard) -> None:
    before = await dash.ctx.pool.fetchval("SELECT version FROM config_version")
    await dash.admin.put("/api/providers/does-not-exist", json={"name": "x"})
    assert await dash.ctx.pool.fetchval("SELECT version FROM config_version") == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "main"}, "provider"),
        ({"provider": "OpenAI", "name": "main"}, "provider"),
        ({"provider": "-openai", "name": "main"}, "provider"),
        ({"provider": "open ai", "name": "main"}, "provider"),
        ({"provider": 5, "name": "main"}, "provider"),
        ({"provider": "openai"}, "name"),
        ({"provider": "openai", "name": "   "}, "name"),
        ({"provider": "openai", "name": "main", "baseUrl": "ftp://example.com"}, "baseUrl"),
        ({"provider": "openai", "name": "main", "baseUrl": "not a url"}, "baseUrl"),
        ({"provider": "openai", "name": "main", "baseUrl": "http://"}, "baseUrl"),
        ({"provider": "openai", "name": "main", "priority": "high"}, "priority"),
        ({"provider": "openai", "name": "main", "isActive": "yes"}, "isActive"),
        ({"provider": "openai", "name": "main", "headers": {"Bad Header": "x"}}, "headers"),
        ({"provider": "openai", "name": "main", "headers": {"X-Ok": "a\r\nInjected: 1"}}, "headers"),
        ({"provider": "openai", "name": "main", "headers": ["X-Ok"]}, "headers"),
        ({"provider": "openai", "name": "main", "apiKey": 123}, "apiKey"),
        ({"provider": "azure", "name": "eu", "options": {"api version": "1"}}, "options"),
        ({"provider": "azure", "name": "eu", "options": {"apiVersion": 2024}}, "options"),
    ],
)
async def test_invalid_create_is_400(dash: Dashboard, body: dict[str, Any], field: str) -> None:
    response = await dash.admin.post("/api/providers", json=body)
    assert_error(response, 400, "invalid_request_error")
    assert field in response.json()["error"]["message"]
    assert response.json()["error"]["param"].startswith(field)
    assert (await dash.admin.get("/api/providers")).json()["total"] == 0


@pytest.mark.parametrize("content", [b"{oops", b"", b"[]", b"null"])
async def test_malformed_json_is_400(dash: Dashboard, content: bytes) -> None:
    response = await dash.admin.post("/api/providers", content=content, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request_error")
    connection_id = (await create(dash))["id"]
    update = await dash.admin.put(
        f"/api/providers/{connection_id}", content=content, headers={"content-type": "application/json"}
    )
    assert_error(update, 400, "invalid_request_error")


async def test_invalid_update_is_400(dash: Dashboard) -> None:
    connection_id = (await create(dash))["id"]
    response = await dash.admin.put(f"/api/providers/{connection_id}", json={"baseUrl": "javascript:alert(1)"})
    assert_error(response, 400, "invalid_request_error")
    assert "baseUrl" in response.json()["error"]["message"]


async def test_key_that_no_longer_decrypts_is_hidden(dash: Dashboard) -> None:
    connection_id = (await create(dash))["id"]
    await dash.ctx.pool.execute(
        "UPDATE provider_connections SET api_key_enc = $1", dash.ctx.cipher.encrypt(SECRET, aad="another-row")
    )
    item = (await dash.admin.get(f"/api/providers/{connection_id}")).json()["connection"]
    assert item["apiKey"] == "****"


AZURE = "https://acme-eu.openai.azure.com/openai"


async def test_azure_connection_keeps_its_api_version_and_the_snapshot_carries_it(dash: Dashboard) -> None:
    created = await create(dash, provider="azure", baseUrl=AZURE, options={"apiVersion": "2025-01-01-preview"})
    assert created["connection"]["options"] == {"apiVersion": "2025-01-01-preview"}
    connection_id = created["id"]
    (conn,) = (await load_snapshot(dash.ctx.pool)).connections
    assert (conn.base_url, dict(conn.options)) == (AZURE, {"apiVersion": "2025-01-01-preview"})
    # a partial update keeps the options; an explicit {} reverts to the catalog default
    await dash.admin.put(f"/api/providers/{connection_id}", json={"name": "renamed"})
    assert (await dash.admin.get(f"/api/providers/{connection_id}")).json()["connection"]["options"] == {
        "apiVersion": "2025-01-01-preview"
    }
    await dash.admin.put(f"/api/providers/{connection_id}", json={"options": {}})
    (conn,) = (await load_snapshot(dash.ctx.pool)).connections
    assert dict(conn.options) == {}


async def test_azure_needs_its_resource_endpoint(dash: Dashboard) -> None:
    response = await dash.admin.post("/api/providers", json={"provider": "azure", "name": "eu", "apiKey": SECRET})
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["code"] == "base_url_required"
    assert response.json()["error"]["param"] == "baseUrl"
    assert "openai.azure.com" in response.json()["error"]["message"]
    connection_id = (await create(dash, provider="azure", baseUrl=AZURE))["id"]
    cleared = await dash.admin.put(f"/api/providers/{connection_id}", json={"baseUrl": ""})
    assert_error(cleared, 400, "invalid_request_error")
    assert (await dash.admin.get(f"/api/providers/{connection_id}")).json()["connection"]["baseUrl"] == AZURE


async def test_options_a_provider_does_not_take_are_refused(dash: Dashboard) -> None:
    response = await dash.admin.post(
        "/api/providers", json={"provider": "openai", "name": "x", "options": {"apiVersion": "2024-10-21"}}
    )
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["code"] == "invalid_options"
    assert response.json()["error"]["param"] == "options"
    assert "accepted: none" in response.json()["error"]["message"]
    azure = await dash.admin.post(
        "/api/providers", json={"provider": "azure", "name": "x", "baseUrl": AZURE, "options": {"region": "eu"}}
    )
    assert_error(azure, 400, "invalid_request_error")
    assert "accepted: apiVersion" in azure.json()["error"]["message"]
    assert (await dash.admin.get("/api/providers")).json()["total"] == 0
