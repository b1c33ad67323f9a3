"""``/api/providers/{id}/test``, ``/{id}/models``, ``/api/providers/validate`` and ``/api/settings/proxy/test``
through the dashboard, against a real executor process (the dashboard may not import it) and fake providers."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from omniroute_core import grpcx
from omniroute_core.crypto import generate_encryption_key
from omniroute_devservers.fake_models import MODEL_IDS
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.fake_providers import FakeAnthropic
from omniroute_devservers.fake_proxy import FakeProxy, basic_auth
from omniroute_devservers.fake_upstream import Reply
from omniroute_devservers.servers import free_port

from .conftest import Dashboard, make_settings, start
from .test_auth import assert_error

KEY = "sk-dashboard-admin-test-key"
# one key for the module's executor and every dashboard here: the executor decrypts what the dashboard stored
ENCRYPTION_KEY = generate_encryption_key()


@pytest.fixture(scope="module")
async def executor_addr(nats_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    folder = tmp_path_factory.mktemp("executor")
    port = free_port()
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "EXECUTOR_PORT": str(port),
        "METRICS_PORT": "0",
        "BIND_HOST": "127.0.0.1",
        "TRANSLATOR_ADDR": "127.0.0.1:9",
        "OMNIROUTE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "USAGE_SPOOL_DIR": str(folder / "spool"),
        "ADMIN_CALL_TIMEOUT_S": "2",
    }
    log_path = folder / "executor.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "omniroute_executor.main", env=env, stdout=log, stderr=log
        )
    try:
        healthy = await grpcx.wait_healthy(f"127.0.0.1:{port}", timeout=60, service="omniroute.v1.ProviderAdmin")
        assert healthy, log_path.read_text()
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


@pytest.fixture
async def adash(pg_database: str, nats_url: str, executor_addr: str) -> AsyncIterator[Dashboard]:
    settings = make_settings(
        pg_database, nats_url, executor_addr=executor_addr, omniroute_encryption_key=ENCRYPTION_KEY
    )
    async for running in start(settings):
        yield running


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def _connection(dash: Dashboard, provider: str, base_url: str, api_key: str = KEY) -> str:
    body = {"provider": provider, "name": "main", "apiKey": api_key, "baseUrl": base_url}
    response = await dash.admin.post("/api/providers", json=body)
    assert response.status_code == 201, response.text
    connection_id: str = response.json()["id"]
    return connection_id


async def test_routes_need_the_admin(adash: Dashboard) -> None:
    for method, path in [
        ("POST", "/api/providers/x/test"),
        ("GET", "/api/providers/x/models"),
        ("POST", "/api/providers/validate"),
        ("POST", "/api/settings/proxy/test"),
    ]:
        assert_error(await adash.client.request(method, path, json={}), 401, "authentication_error")


async def test_a_connection_test_calls_the_provider_and_is_recorded(adash: Dashboard, openai: FakeOpenAI) -> None:
    connection_id = await _connection(adash, "openai", openai.base_url)
    response = await adash.admin.post(f"/api/providers/{connection_id}/test")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["valid"] is True
    assert result["status"] == 200
    assert result["connectionId"] == connection_id
    assert result["testStatus"] == "active"
    (seen,) = openai.requests
    assert (seen.method, seen.path, seen.headers["Authorization"]) == ("GET", "/v1/models", f"Bearer {KEY}")
    shown = (await adash.admin.get(f"/api/providers/{connection_id}")).json()["connection"]
    assert shown["testStatus"] == "active"
    assert shown["lastTested"] == result["testedAt"]
    assert shown["lastError"] is None


async def test_a_provider_node_is_testable_the_moment_it_is_created(adash: Dashboard, openai: FakeOpenAI) -> None:
    # created and tested back to back (the executor waits for the config version the dashboard read the row at;
    # services/executor/tests/test_admin.py shows that wait with a snapshot held back)
    node = {"name": "In-house", "prefix": "inhouse", "baseUrl": openai.base_url, "apiKey": KEY}
    created = await adash.admin.post("/api/provider-nodes", json=node)
    assert created.status_code == 201, created.text
    response = await adash.admin.post(f"/api/providers/{created.json()['connectionId']}/test")
    assert response.status_code == 200, response.text
    (seen,) = openai.requests
    assert (seen.method, seen.path) == ("GET", "/v1/models")
    assert response.json()["valid"] is True, response.text
    assert seen.headers["Authorization"] == f"Bearer {KEY}"


async def test_a_refused_key_is_valid_false_and_recorded_as_an_error(adash: Dashboard, openai: FakeOpenAI) -> None:
    connection_id = await _connection(adash, "openai", openai.base_url)
    openai.script.append(Reply(status=401, json={"error": {"message": "Incorrect API key provided", "type": "x"}}))
    response = await adash.admin.post(f"/api/providers/{connection_id}/test")
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["valid"], result["status"], result["testStatus"]) == (False, 401, "error")
    assert result["error"] == "provider answered 401: Incorrect API key provided"
    shown = (await adash.admin.get(f"/api/providers/{connection_id}")).json()["connection"]
    assert (shown["testStatus"], shown["lastError"]) == ("error", result["error"])
    # a rename keeps the result; a new key makes it stale until the next test
    await adash.admin.put(f"/api/providers/{connection_id}", json={"name": "renamed"})
    shown = (await adash.admin.get(f"/api/providers/{connection_id}")).json()["connection"]
    assert shown["testStatus"] == "error"
    await adash.admin.put(f"/api/providers/{connection_id}", json={"apiKey": "sk-a-brand-new-key-0000"})
    shown = (await adash.admin.get(f"/api/providers/{connection_id}")).json()["connection"]
    assert (shown["testStatus"], shown["lastTested"], shown["lastError"]) == ("unknown", None, None)


async def test_an_unreachable_provider_is_valid_false_and_its_models_a_502(adash: Dashboard) -> None:
    connection_id = await _connection(adash, "openai", f"http://127.0.0.1:{free_port()}/v1")
    result = (await adash.admin.post(f"/api/providers/{connection_id}/test")).json()
    assert (result["valid"], result["status"]) == (False, None)
    response = await adash.admin.get(f"/api/providers/{connection_id}/models")
    assert_error(response, 502, "upstream_error")
    assert "cannot connect" in response.json()["error"]["message"]


async def test_models_are_the_providers_live_list(adash: Dashboard) -> None:
    fake = FakeAnthropic()
    await fake.start()
    try:
        connection_id = await _connection(adash, "anthropic", fake.base_url)
        response = await adash.admin.get(f"/api/providers/{connection_id}/models")
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["provider"] == "anthropic"
        assert doc["connectionId"] == connection_id
        assert doc["source"] == "live"
        assert [m["id"] for m in doc["models"]] == list(MODEL_IDS)
        (seen,) = fake.requests
        assert seen.headers["x-api-key"] == KEY
    finally:
        await fake.stop()


async def test_models_failure_carries_the_upstream_status(adash: Dashboard, openai: FakeOpenAI) -> None:
    connection_id = await _connection(adash, "openai", openai.base_url)
    openai.script.append(Reply(status=403, json={"error": {"message": "Project has no access", "type": "x"}}))
    response = await adash.admin.get(f"/api/providers/{connection_id}/models")
    assert_error(response, 502, "upstream_error")
    assert response.json()["error"]["message"] == "Model list failed: provider answered 403: Project has no access"
    assert response.json()["error"]["code"] == "upstream_error"


async def test_a_provider_without_a_list_answers_its_catalog(adash: Dashboard) -> None:
    connection_id = await _connection(adash, "deepgram", f"http://127.0.0.1:{free_port()}/v1")
    doc = (await adash.admin.get(f"/api/providers/{connection_id}/models")).json()
    assert doc["source"] == "catalog"
    assert doc["models"]


async def test_unknown_connection_ids_are_404(adash: Dashboard) -> None:
    for method, path in [("POST", "/api/providers/nope/test"), ("GET", "/api/providers/nope/models")]:
        response = await adash.admin.request(method, path)
        assert_error(response, 404, "not_found_error")
        assert response.json()["error"]["code"] == "connection_not_found"


async def test_validate_tests_credentials_before_they_are_saved(adash: Dashboard, openai: FakeOpenAI) -> None:
    body = {"provider": "openai", "apiKey": KEY, "baseUrl": openai.base_url}
    response = await adash.admin.post("/api/providers/validate", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True
    openai.script.append(Reply(status=401, json={"error": {"message": "Incorrect API key provided", "type": "x"}}))
    refused = (await adash.admin.post("/api/providers/validate", json={**body, "apiKey": "sk-wrong"})).json()
    assert (refused["valid"], refused["status"]) == (False, 401)
    assert [r.headers["Authorization"] for r in openai.requests] == [f"Bearer {KEY}", "Bearer sk-wrong"]
    assert (await adash.admin.get("/api/providers")).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"apiKey": KEY}, "provider"),
        ({"provider": "Not A Slug", "apiKey": KEY}, "provider"),
        ({"provider": "openai", "apiKey": 5}, "apiKey"),
        ({"provider": "openai", "baseUrl": "ftp://x"}, "baseUrl"),
        ({"provider": "no-such-provider", "apiKey": KEY}, "provider"),
        ({"provider": "openai", "apiKey": KEY, "baseUrl": "http://169.254.169.254/v1"}, "baseUrl"),
    ],
)
async def test_validate_refuses_a_malformed_config(adash: Dashboard, body: dict[str, Any], param: str) -> None:
    response = await adash.admin.post("/api/providers/validate", json=body)
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["param"] == param
    assert_error(await adash.admin.post("/api/providers/validate", content=b"{not json"), 400, "invalid_request_error")


async def test_proxy_test_goes_through_the_proxy(adash: Dashboard, openai: FakeOpenAI) -> None:
    proxy = FakeProxy(required_auth=basic_auth("ops", "pw:with@chars"))
    await proxy.start()
    try:
        test_url = f"{openai.base_url}/models"
        body = {"url": proxy.url, "username": "ops", "password": "pw:with@chars", "testUrl": test_url}
        response = await adash.admin.post("/api/settings/proxy/test", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["success"], result["status"]) == (True, 401)
        assert result["proxyUrl"] == f"http://ops:***@127.0.0.1:{proxy.port}"
        (seen,) = proxy.seen
        assert seen.target == test_url
        omniroute_shape = {"proxy": {"type": "http", "host": "127.0.0.1", "port": str(proxy.port)}, "testUrl": test_url}
        refused = (await adash.admin.post("/api/settings/proxy/test", json=omniroute_shape)).json()
        assert (refused["success"], refused["status"]) == (False, 407)
    finally:
        await proxy.stop()
    audit = (await adash.admin.get("/api/compliance/audit-log")).json()
    assert "pw:with@chars" not in str(audit)


async def test_the_saved_proxy_is_tested_when_none_is_given(adash: Dashboard, openai: FakeOpenAI) -> None:
    proxy = FakeProxy(required_auth=basic_auth("ops", "p@ss:word%"))
    await proxy.start()
    try:
        test_url = f"{openai.base_url}/models"
        saved = {"enabled": True, "url": proxy.url, "username": "ops", "password": "p@ss:word%"}
        assert (await adash.admin.put("/api/settings/proxy", json=saved)).status_code == 200
        result = (await adash.admin.post("/api/settings/proxy/test", json={"testUrl": test_url})).json()
        assert (result["success"], result["status"]) == (True, 401), result
        assert result["proxyUrl"] == f"http://ops:***@127.0.0.1:{proxy.port}"
        # credentials inside a given URL are percent-encoded, and are decoded once
        encoded = f"http://ops:p%40ss%3Aword%25@127.0.0.1:{proxy.port}"
        again = (await adash.admin.post("/api/settings/proxy/test", json={"url": encoded, "testUrl": test_url})).json()
        assert (again["success"], again["status"]) == (True, 401), again
        assert [s.proxy_authorization for s in proxy.seen] == [basic_auth("ops", "p@ss:word%")] * 2
    finally:
        await proxy.stop()


async def test_an_unreachable_proxy_is_success_false(adash: Dashboard) -> None:
    body = {"url": f"http://127.0.0.1:{free_port()}", "testUrl": "http://127.0.0.1:9/"}
    result = (await adash.admin.post("/api/settings/proxy/test", json=body)).json()
    assert result["success"] is False
    assert result["error"]


async def test_a_proxy_object_takes_an_ipv6_host_bracketed_or_not(adash: Dashboard) -> None:
    # "[::1]" was bracketed again ("http://[[::1]]:port"), which no URL parser reads: a 500 with credentials
    port = free_port()
    for host in ("::1", "[::1]"):
        proxy = {"host": host, "port": port, "username": "u", "password": "pw"}
        response = await adash.admin.post(
            "/api/settings/proxy/test", json={"proxy": proxy, "testUrl": "http://127.0.0.1:9/"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["proxyUrl"] == f"http://u:***@[::1]:{port}"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "url"),  # nothing given and no saved proxy
        ({"url": "socks5://127.0.0.1:1080"}, "url"),
        ({"url": "http://169.254.169.254:3128"}, "url"),
        ({"url": "http://p:1", "testUrl": "http://metadata.google.internal/computeMetadata/v1/"}, "testUrl"),
        ({"url": "http://proxy:notaport"}, "url"),
        ({"proxy": {"type": "socks5", "host": "p", "port": 1080}}, "proxy.type"),
        ({"proxy": {"host": "p", "port": 70000}}, "proxy.port"),
        # a host is one host: a path, userinfo or whitespace in it would make a different URL than asked for
        ({"proxy": {"host": "proxy/x", "port": 3128}}, "proxy.host"),
        ({"proxy": {"host": "user@proxy", "port": 3128}}, "proxy.host"),
        ({"proxy": {"host": "pro xy", "port": 3128}}, "proxy.host"),
        ({"url": "http://p:1", "testUrl": "file:///etc/passwd"}, "testUrl"),
    ],
)
async def test_a_malformed_proxy_test_is_400(adash: Dashboard, body: dict[str, Any], param: str | None) -> None:
    response = await adash.admin.post("/api/settings/proxy/test", json=body)
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["param"] == param
