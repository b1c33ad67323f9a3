"""Login, logout, the session cookie and the admin guard of every protected route."""

from __future__ import annotations

import httpx
import pytest

from .conftest import PASSWORD, Dashboard

PROTECTED = [
    ("GET", "/api/providers"),
    ("POST", "/api/providers"),
    ("GET", "/api/providers/some-id"),
    ("PUT", "/api/providers/some-id"),
    ("DELETE", "/api/providers/some-id"),
    ("GET", "/api/keys"),
    ("POST", "/api/keys"),
    ("GET", "/api/keys/some-id"),
    ("PUT", "/api/keys/some-id"),
    ("PATCH", "/api/keys/some-id"),
    ("DELETE", "/api/keys/some-id"),
    ("GET", "/api/settings"),
    ("GET", "/api/auth/session"),
    ("POST", "/api/anything/else"),
]


def assert_error(response: httpx.Response, status: int, type_: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == type_
    assert isinstance(error["message"], str)
    assert error["message"]


async def test_login_sets_a_strict_session_cookie(dash: Dashboard) -> None:
    response = await dash.client.post("/api/auth/login", json={"password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"success": True}
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("auth_token=")
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "Path=/" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "secure" not in attributes
    assert "Max-Age=86400" in cookie


async def test_secure_cookie_when_configured(pg_database: str, nats_url: str) -> None:
    from .conftest import make_settings, start

    async for running in start(make_settings(pg_database, nats_url, cookie_secure=True)):
        response = await running.client.post("/api/auth/login", json={"password": PASSWORD})
        assert response.status_code == 200
        assert "; secure" in response.headers["set-cookie"].lower()


async def test_wrong_password_is_401(dash: Dashboard) -> None:
    response = await dash.client.post("/api/auth/login", json={"password": "nope"})
    assert_error(response, 401, "authentication_error")
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[1, 2]", b'"password"', b"{}", b'{"password": 42}', b'{"password": ""}'],
    ids=["empty", "malformed", "array", "string", "no-password", "number", "blank"],
)
async def test_bad_login_body_is_400(dash: Dashboard, content: bytes) -> None:
    response = await dash.client.post("/api/auth/login", content=content, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_protected_routes_need_auth(dash: Dashboard, method: str, path: str) -> None:
    response = await dash.client.request(method, path, json={})
    assert_error(response, 401, "authentication_error")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_a_bogus_cookie_or_bearer_is_401(dash: Dashboard, method: str, path: str) -> None:
    async with dash.new_client(cookies={"auth_token": "forged"}) as forged:
        assert_error(await forged.request(method, path, json={}), 401, "authentication_error")
    headers = {"authorization": "Bearer sk-omni-not-a-real-key"}
    assert_error(await dash.client.request(method, path, json={}, headers=headers), 401, "authentication_error")


async def test_logged_in_admin_gets_through(dash: Dashboard) -> None:
    me = await dash.admin.get("/api/auth/session")
    assert me.json() == {"authenticated": True, "kind": "session", "keyId": None}
    assert (await dash.admin.get("/api/providers")).status_code == 200
    assert (await dash.admin.get("/api/keys")).status_code == 200
    unknown = await dash.admin.get("/api/no/such/thing")
    assert_error(unknown, 404, "not_found_error")


async def test_logout_ends_the_session(dash: Dashboard) -> None:
    token = dash.admin.cookies["auth_token"]
    response = await dash.admin.post("/api/auth/logout")
    assert response.status_code == 200
    assert 'auth_token=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
    assert "auth_token" not in dash.admin.cookies
    # replaying the old cookie is refused: the session row is gone, not just the browser's copy
    async with dash.new_client(cookies={"auth_token": token}) as replay:
        assert_error(await replay.get("/api/providers"), 401, "authentication_error")
    stored = await dash.ctx.pool.fetchval("SELECT count(*) FROM dashboard_sessions")
    assert stored == 0


async def test_logout_without_session_is_harmless(dash: Dashboard) -> None:
    assert (await dash.client.post("/api/auth/logout")).status_code == 200


async def test_session_tokens_are_stored_hashed(dash: Dashboard) -> None:
    token = dash.admin.cookies["auth_token"]
    hashes = [r["token_hash"] for r in await dash.ctx.pool.fetch("SELECT token_hash FROM dashboard_sessions")]
    assert len(hashes) == 1
    assert token not in hashes[0]


async def test_expired_session_is_refused(dash: Dashboard) -> None:
    await dash.ctx.pool.execute("UPDATE dashboard_sessions SET expires_at = now() - interval '1 second'")
    assert_error(await dash.admin.get("/api/providers"), 401, "authentication_error")


async def test_admin_api_key_works_and_other_keys_do_not(dash: Dashboard) -> None:
    admin_key = (await dash.admin.post("/api/keys", json={"name": "ops", "scopes": ["admin"]})).json()["key"]
    chat_key = (await dash.admin.post("/api/keys", json={"name": "app", "scopes": ["chat", "*"]})).json()["key"]

    ok = await dash.client.get("/api/providers", headers={"authorization": f"Bearer {admin_key}"})
    assert ok.status_code == 200
    me = (await dash.client.get("/api/auth/session", headers={"authorization": f"bearer {admin_key}"})).json()
    assert me["kind"] == "api_key"
    assert me["keyId"]
    denied = await dash.client.get("/api/providers", headers={"authorization": f"Bearer {chat_key}"})
    assert_error(denied, 403, "permission_error")

    key_id = (await dash.admin.get("/api/keys")).json()["keys"][-1]["id"]
    revoked = await dash.admin.put(f"/api/keys/{key_id}", json={"revoked": True})
    assert revoked.status_code == 200
    assert revoked.json()["name"] == "ops"
    gone = await dash.client.get("/api/providers", headers={"authorization": f"Bearer {admin_key}"})
    assert_error(gone, 401, "authentication_error")


async def test_expired_admin_key_is_refused(dash: Dashboard) -> None:
    created = (await dash.admin.post("/api/keys", json={"name": "ops", "scopes": ["admin"]})).json()
    await dash.ctx.pool.execute("UPDATE api_keys SET expires_at = now() - interval '1 second'")
    response = await dash.client.get("/api/keys", headers={"authorization": f"Bearer {created['key']}"})
    assert_error(response, 401, "authentication_error")
