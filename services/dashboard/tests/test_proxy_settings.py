"""``/api/settings/proxy``: merged, validated, the password encrypted and never shown, published in the snapshot;
and the link-local / metadata guard on provider base URLs, provider nodes and the proxy URL."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_core.proxies import PROXY_KEY, password_aad
from omniroute_dashboard.proxy_settings import load_proxy_config
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard, make_settings, start
from .test_auth import assert_error

EMPTY = {"enabled": False, "url": "", "username": "", "hasPassword": False, "noProxy": [], "providers": {}}


async def test_defaults_then_merged_updates_with_a_hidden_password(dash: Dashboard) -> None:
    assert (await dash.admin.get("/api/settings/proxy")).json() == EMPTY
    body = {
        "enabled": True,
        "url": "http://proxy.corp:3128/",
        "username": "me",
        "password": "s3cret-pass",
        "noProxy": ["localhost", "*.internal", "10.0.0.0/8"],
        "providers": {"groq": {"enabled": False}, "openai": {"url": "https://openai-proxy:8443", "password": "pw"}},
    }
    resp = await dash.admin.put("/api/settings/proxy", json=body)
    assert resp.status_code == 200, resp.text
    expected = {
        "enabled": True,
        "url": "http://proxy.corp:3128",
        "username": "me",
        "hasPassword": True,
        "noProxy": ["localhost", "*.internal", "10.0.0.0/8"],
        "providers": {
            "groq": {"enabled": False},
            "openai": {"url": "https://openai-proxy:8443", "username": "", "hasPassword": True},
        },
    }
    assert resp.json() == expected
    shown = await dash.admin.get("/api/settings/proxy")
    assert shown.json() == expected and "s3cret-pass" not in shown.text
    snap = await load_snapshot(dash.ctx.pool)
    stored = snap.settings[PROXY_KEY]
    assert "s3cret-pass" not in str(stored) and "password" not in stored
    assert dash.ctx.cipher.decrypt(stored["passwordEnc"], aad=password_aad()) == "s3cret-pass"
    async with dash.ctx.pool.acquire() as conn:
        config = await load_proxy_config(conn, dash.ctx)
    assert config.proxy_for("anthropic", "https://api.anthropic.com") == "http://me:s3cret-pass@proxy.corp:3128"
    assert config.proxy_for("groq", "https://api.groq.com") is None
    assert config.proxy_for("anthropic", "http://10.1.2.3/v1") is None

    # a PUT without the password keeps it; null clears fields and entries
    merged = (await dash.admin.put("/api/settings/proxy", json={"url": "http://other:8080"})).json()
    assert merged["hasPassword"] is True and merged["url"] == "http://other:8080"
    cleared = await dash.admin.put(
        "/api/settings/proxy", json={"password": None, "providers": {"groq": None, "openai": {"password": ""}}}
    )
    assert cleared.json()["hasPassword"] is False
    assert cleared.json()["providers"] == {
        "openai": {"url": "https://openai-proxy:8443", "username": "", "hasPassword": False}
    }
    off = (await dash.admin.put("/api/settings/proxy", json={"enabled": False, "url": ""})).json()
    assert (off["enabled"], off["url"]) == (False, "")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"url": "socks5://127.0.0.1:1080"}, "socks5 proxies are not supported"),
        ({"url": "ftp://proxy:21"}, "http://host:port"),
        ({"url": "proxy.corp:3128"}, "http://host:port"),
        ({"url": "http://user:pw@proxy:3128"}, "username and password"),
        ({"url": "http://proxy:3128/path"}, "no path"),
        ({"url": "http://proxy:99999"}, "url"),
        ({"url": "http://169.254.169.254:80"}, "metadata"),
        ({"url": "http://[fe80::1]:3128"}, "link-local"),
        ({"enabled": True}, "needs a url"),
        ({"enabled": "yes"}, "enabled"),
        ({"noProxy": ["10.0.0.0/33"]}, "CIDR"),
        ({"noProxy": ["a b"]}, "noProxy"),
        ({"noProxy": "localhost"}, "noProxy"),
        ({"providers": {"no-such-provider": {"url": "http://p:1"}}}, "unknown provider"),
        ({"providers": {"openai": {"username": "u"}}}, "needs a url"),
        ({"providers": {"openai": {"url": "socks5h://p:1"}}}, "providers.openai.url"),
        ({"providers": {"openai": {"port": 1}}}, "providers"),
        ({"proxy": "http://p:1"}, "proxy"),
    ],
)
async def test_bad_proxy_settings_are_400(dash: Dashboard, body: Any, needle: str) -> None:
    resp = await dash.admin.put("/api/settings/proxy", json=body)
    assert_error(resp, 400, "invalid_request_error")
    assert needle in resp.json()["error"]["message"]
    assert (await dash.admin.get("/api/settings/proxy")).json() == EMPTY


async def test_proxy_settings_need_a_login(dash: Dashboard) -> None:
    assert_error(await dash.client.get("/api/settings/proxy"), 401, "authentication_error")
    assert_error(await dash.client.put("/api/settings/proxy", json={"enabled": False}), 401, "authentication_error")


@pytest.mark.parametrize(
    "base_url",
    ["http://169.254.169.254/v1", "http://[::ffff:169.254.169.254]/v1", "http://metadata.google.internal/v1"],
)
async def test_provider_addresses_on_metadata_endpoints_are_400(dash: Dashboard, base_url: str) -> None:
    created = await dash.admin.post("/api/providers", json={"provider": "openai", "name": "a", "baseUrl": base_url})
    assert_error(created, 400, "invalid_request_error")
    assert "ALLOW_LINK_LOCAL_PROVIDERS" in created.json()["error"]["message"]
    ok = await dash.admin.post("/api/providers", json={"provider": "openai", "name": "b"})
    cid = ok.json()["id"]
    assert_error(
        await dash.admin.put(f"/api/providers/{cid}", json={"baseUrl": base_url}), 400, "invalid_request_error"
    )
    local = await dash.admin.put(f"/api/providers/{cid}", json={"baseUrl": "http://localhost:11434/v1"})
    assert local.status_code == 200, local.text
    node = {"name": "n", "prefix": "mynode", "baseUrl": base_url}
    assert_error(await dash.admin.post("/api/provider-nodes", json=node), 400, "invalid_request_error")
    made = await dash.admin.post("/api/provider-nodes", json={**node, "baseUrl": "http://10.0.0.7:8000/v1"})
    assert made.status_code == 201, made.text
    edit = await dash.admin.put("/api/provider-nodes/mynode", json={"baseUrl": base_url})
    assert_error(edit, 400, "invalid_request_error")


async def test_the_allow_switch_accepts_link_local_addresses(pg_database: str, nats_url: str) -> None:
    settings = make_settings(pg_database, nats_url, allow_link_local_providers=True)
    async for dash in start(settings):
        body = {"provider": "openai", "name": "a", "baseUrl": "http://169.254.10.10/v1"}
        assert (await dash.admin.post("/api/providers", json=body)).status_code == 201
        proxy = await dash.admin.put("/api/settings/proxy", json={"url": "http://169.254.10.11:3128"})
        assert proxy.status_code == 200, proxy.text
        # the scheme rule is not part of the switch
        socks = await dash.admin.put("/api/settings/proxy", json={"url": "socks5://169.254.10.11:1080"})
        assert_error(socks, 400, "invalid_request_error")
