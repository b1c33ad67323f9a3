"""Provider administration end to end: edge → dashboard → executor → a fake provider (or a real forward proxy).

``POST /api/providers/{id}/test`` and ``GET /api/providers/{id}/models`` reach the provider with the stored
connection's key; ``POST /api/settings/proxy/test`` sends its request through a tiny real proxy, which records it
(an absolute-URI GET for an http target, a CONNECT tunnel for an https one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from omniroute_devservers.control import make_provider
from omniroute_devservers.fake_models import MODEL_IDS
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.fake_proxy import FakeProxy, basic_auth
from omniroute_devservers.servers import free_port

pytestmark = pytest.mark.e2e

PROVIDER = "fireworks"  # OpenAI format, used by no other cross-service test
KEY = "sk-provider-admin-e2e"


@pytest.fixture(scope="module")
async def connection(admin: httpx.AsyncClient) -> AsyncIterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    await fake.start()
    connection_id = await make_provider(admin, PROVIDER, fake.base_url, api_key=KEY)
    try:
        yield fake, connection_id
    finally:
        await admin.delete(f"/api/providers/{connection_id}")
        await fake.stop()


async def test_connection_test_reaches_the_provider_with_the_stored_key(
    admin: httpx.AsyncClient, connection: tuple[FakeOpenAI, str]
) -> None:
    fake, connection_id = connection
    before = len(fake.requests)
    response = await admin.post(f"/api/providers/{connection_id}/test")
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["valid"], result["status"], result["testStatus"]) == (True, 200, "active")
    (seen,) = fake.requests[before:]
    assert (seen.method, seen.path, seen.headers["Authorization"]) == ("GET", "/v1/models", f"Bearer {KEY}")
    shown = (await admin.get(f"/api/providers/{connection_id}")).json()["connection"]
    assert shown["testStatus"] == "active"


async def test_models_are_listed_live(admin: httpx.AsyncClient, connection: tuple[FakeOpenAI, str]) -> None:
    _, connection_id = connection
    response = await admin.get(f"/api/providers/{connection_id}/models")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert (doc["provider"], doc["connectionId"], doc["source"]) == (PROVIDER, connection_id, "live")
    assert [m["id"] for m in doc["models"]] == list(MODEL_IDS)


async def test_proxy_test_goes_through_the_proxy(admin: httpx.AsyncClient, connection: tuple[FakeOpenAI, str]) -> None:
    fake, _ = connection
    proxy = FakeProxy(required_auth=basic_auth("ops", "proxy-pass"))
    await proxy.start()
    try:
        before = len(fake.requests)
        test_url = f"{fake.base_url}/models"
        body = {"url": f"http://ops:proxy-pass@127.0.0.1:{proxy.port}", "testUrl": test_url}
        response = await admin.post("/api/settings/proxy/test", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["success"], result["status"]) == (True, 401)  # the fake refuses a list without a key
        assert "proxy-pass" not in response.text
        (seen,) = proxy.seen
        assert (seen.method, seen.target) == ("GET", test_url)
        assert seen.proxy_authorization.startswith("Basic ")
        assert len(fake.requests) == before + 1  # and the proxy forwarded it

        # an https target is tunnelled with CONNECT; nothing listens behind it, so the test fails after the proxy
        https_target = f"127.0.0.1:{free_port()}"
        tunnelled = await admin.post("/api/settings/proxy/test", json={**body, "testUrl": f"https://{https_target}/"})
        assert tunnelled.json()["success"] is False
        assert (proxy.seen[-1].method, proxy.seen[-1].target) == ("CONNECT", https_target)
    finally:
        await proxy.stop()
