"""``omniroute.v1.ProviderAdmin`` through a real gRPC server, against fake providers that record the exact request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from omniroute.v1 import executor_pb2, executor_pb2_grpc
from omniroute_core import grpcx, jsonx
from omniroute_core.catalog import Catalog, load_catalog, parse_catalog
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.nodes import ProviderNode
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_devservers.fake_media import FakeDeepgram
from omniroute_devservers.fake_models import MODEL_IDS
from omniroute_devservers.fake_openai import FakeOpenAI
from omniroute_devservers.fake_providers import FakeAnthropic, FakeGemini, FakeOllama
from omniroute_devservers.fake_proxy import FakeProxy, basic_auth
from omniroute_devservers.fake_upstream import FakeUpstream, Reply
from omniroute_devservers.servers import free_port
from omniroute_executor.admin import ProviderAdminServicer
from omniroute_executor.admin import _service as admin_service
from omniroute_executor.prepare import Credentials
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream

KEY = "sk-admin-test-secret-1234"


@dataclass
class Admin:
    stub: executor_pb2_grpc.ProviderAdminAsyncStub
    cipher: Cipher
    settings: dict[str, Any]  # the config snapshot's settings (replace the values to change them)
    state: dict[str, Any]  # the snapshot's "version" and provider "nodes" (replace them to change the snapshot)

    async def call(self, rpc: str, doc: Any) -> dict[str, Any]:
        method = getattr(self.stub, rpc)
        reply = await method(executor_pb2.AdminRequest(body_json=jsonx.dumps(doc)), timeout=10)
        out: dict[str, Any] = jsonx.loads(reply.body_json)
        return out

    def stored(self, provider: str, base_url: str, key: str = KEY, **extra: Any) -> dict[str, Any]:
        return {
            "connection": {
                "id": "conn-9",
                "provider": provider,
                "baseUrl": base_url,
                "apiKeyEnc": self.cipher.encrypt(key, aad="conn-9") if key else "",
                **extra,
            }
        }


async def _serve(catalog: Catalog, timeout_s: float) -> AsyncIterator[Admin]:
    cipher = Cipher(generate_encryption_key())
    settings: dict[str, Any] = {}
    state: dict[str, Any] = {"version": 1, "nodes": ()}
    upstream = Upstream(max_connections=10, connect_timeout_s=2, read_timeout_s=5)
    translator_channel = grpcx.insecure_channel("127.0.0.1:9")  # every provider here speaks the hub format or GET
    servicer = ProviderAdminServicer(
        catalog=catalog,
        snapshot=lambda: ConfigSnapshot.build(state["version"], (), (), dict(settings), nodes=state["nodes"]),
        credentials=Credentials(cipher),
        upstream=upstream,
        translator=TranslatorClient(translator_channel),
        timeout_s=timeout_s,
    )
    server = grpcx.Server("127.0.0.1:0", ["omniroute.v1.ProviderAdmin"])
    executor_pb2_grpc.add_ProviderAdminServicer_to_server(servicer, server.server)
    await server.start()
    channel = grpcx.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Admin(executor_pb2_grpc.ProviderAdminStub(channel), cipher, settings, state)
    finally:
        await channel.close()
        await server.stop(0)
        await upstream.close()
        await translator_channel.close()


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    async for running in _serve(load_catalog(), timeout_s=1.0):
        yield running


@pytest.fixture
async def fakes() -> AsyncIterator[Callable[[type[FakeUpstream]], FakeUpstream]]:
    started: list[FakeUpstream] = []

    async def make(kind: type[FakeUpstream]) -> FakeUpstream:
        fake = kind()
        await fake.start()
        started.append(fake)
        return fake

    def factory(kind: type[FakeUpstream]) -> Any:
        return make(kind)

    try:
        yield factory
    finally:
        for fake in started:
            await fake.stop()


async def test_stored_openai_connection_is_tested_with_its_decrypted_key_on_the_model_list(
    admin: Admin, fakes: Any
) -> None:
    fake = await fakes(FakeOpenAI)
    doc = admin.stored("openai", fake.base_url, headers={"OpenAI-Organization": "org-1"})
    result = await admin.call("TestConnection", doc)
    assert result["valid"] is True
    assert result["status"] == 200
    assert result["provider"] == "openai"
    assert isinstance(result["latencyMs"], int)
    assert "error" not in result
    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("GET", "/v1/models")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.headers["OpenAI-Organization"] == "org-1"


async def test_candidate_anthropic_key_is_sent_as_x_api_key_with_the_version_header(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeAnthropic)
    candidate = {"candidate": {"provider": "anthropic", "apiKey": KEY, "baseUrl": fake.base_url}}
    result = await admin.call("TestConnection", candidate)
    assert result["valid"] is True
    models = await admin.call("ListModels", candidate)
    assert models["source"] == "live"
    assert [m["id"] for m in models["models"]] == list(MODEL_IDS)
    assert models["models"][0]["name"] == "Fake Large"
    for seen in fake.requests:
        assert (seen.method, seen.path) == ("GET", "/v1/models?limit=1000")
        assert seen.headers["x-api-key"] == KEY
        assert seen.headers["anthropic-version"] == "2023-06-01"
        assert "Authorization" not in seen.headers


async def test_gemini_models_lose_their_models_prefix_and_the_key_travels_in_a_header(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeGemini)
    models = await admin.call(
        "ListModels", {"candidate": {"provider": "gemini", "apiKey": KEY, "baseUrl": fake.base_url}}
    )
    assert [m["id"] for m in models["models"]] == list(MODEL_IDS)
    (seen,) = fake.requests
    assert seen.path == "/v1beta/models?pageSize=1000"
    assert seen.headers["x-goog-api-key"] == KEY
    assert KEY not in seen.path


async def test_ollama_needs_no_key_and_lists_its_tags(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOllama)
    models = await admin.call("ListModels", admin.stored("ollama", fake.base_url, key=""))
    assert models == {
        "ok": True,
        "provider": "ollama",
        "models": [{"id": f"{m}:latest"} for m in MODEL_IDS],
        "source": "live",
    }
    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("GET", "/api/tags")
    assert "Authorization" not in seen.headers


async def test_a_provider_without_a_list_endpoint_answers_its_catalog_models(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeDeepgram)
    doc = admin.stored("deepgram", fake.base_url)
    models = await admin.call("ListModels", doc)
    assert models["source"] == "catalog"
    assert models["models"] and all(m["type"] == "transcription" for m in models["models"])
    assert fake.requests == []
    tested = await admin.call("TestConnection", doc)  # its catalog test path instead
    assert tested["valid"] is True
    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("GET", "/v1/projects")
    assert seen.headers["Authorization"] == f"Token {KEY}"


async def test_a_refused_key_is_invalid_with_the_providers_message_and_never_the_key(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)
    error = {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}
    fake.script.extend([Reply(status=401, json={"error": error})] * 2)
    result = await admin.call("TestConnection", admin.stored("openai", fake.base_url))
    assert result["valid"] is False
    assert result["status"] == 401
    assert result["error"] == "provider answered 401: Incorrect API key provided: ***."
    models = await admin.call("ListModels", admin.stored("openai", fake.base_url))
    assert models["ok"] is False
    assert models["status"] == 401
    assert KEY not in jsonx.dumps_str(models)


async def test_an_unreachable_provider_is_invalid_without_a_status(admin: Admin) -> None:
    base = f"http://127.0.0.1:{free_port()}/v1"
    result = await admin.call("TestConnection", admin.stored("openai", base))
    assert result["valid"] is False
    assert result["status"] is None
    assert "cannot connect" in result["error"]
    models = await admin.call("ListModels", admin.stored("openai", base))
    assert models["ok"] is False and models["status"] is None


async def test_a_provider_that_never_answers_is_cut_at_the_timeout(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)
    fake.script.append(Reply(hang=True))
    result = await admin.call("TestConnection", admin.stored("openai", fake.base_url))
    assert result["valid"] is False
    assert result["error"] == "no answer within 1s"
    assert 900 <= result["latencyMs"] < 5000


async def test_a_list_that_is_not_a_model_list_is_a_failure(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)
    fake.script.append(Reply(json={"unexpected": True}))
    models = await admin.call("ListModels", admin.stored("openai", fake.base_url))
    assert models["ok"] is False
    assert models["status"] == 200
    assert "'data'" in models["error"]


async def test_a_key_that_does_not_decrypt_is_reported_not_sent(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)
    other = Cipher(generate_encryption_key())
    doc = {
        "connection": {
            "id": "c1",
            "provider": "openai",
            "baseUrl": fake.base_url,
            "apiKeyEnc": other.encrypt("k", aad="c1"),
        }
    }
    result = await admin.call("TestConnection", doc)
    assert result["valid"] is False
    assert "cannot be decrypted" in result["error"]
    assert fake.requests == []


async def test_without_a_list_or_test_path_a_one_token_chat_request_is_the_probe(fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)
    entry = {"id": "bare", "format": "openai", "baseUrl": fake.base_url, "paths": {"chat": "/chat/completions"}}
    catalog = parse_catalog({"providers": [{**entry, "models": ["bare-model"]}]})
    async for admin in _serve(catalog, timeout_s=5):
        result = await admin.call("TestConnection", {"candidate": {"provider": "bare", "apiKey": KEY}})
        assert result["valid"] is True
    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.json == {"model": "bare-model", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    assert seen.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({}, "connection"),
        ({"candidate": {"apiKey": "x"}}, "candidate.provider"),
        ({"candidate": {"provider": "openai", "apiKey": 5}}, "candidate.apiKey"),
        ({"candidate": {"provider": "openai", "baseUrl": "ftp://x"}}, "candidate.baseUrl"),
        ({"candidate": {"provider": "openai", "headers": {"a": 1}}}, "candidate.headers"),
        ({"connection": {"provider": "openai"}}, "connection.id"),
        ([], "body"),
    ],
)
async def test_malformed_requests_are_invalid_argument_naming_the_field(admin: Admin, doc: Any, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.call("TestConnection", doc)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(field)


async def test_an_unknown_provider_is_not_found(admin: Admin) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.call("ListModels", {"candidate": {"provider": "nope", "apiKey": KEY}})
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in (caught.value.details() or "")


async def test_a_provider_node_created_a_moment_ago_is_waited_for(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)

    async def snapshot_arrives() -> None:
        await asyncio.sleep(0.3)
        admin.state["nodes"] = (ProviderNode("node-1", "vllm", "Local", "openai-compatible", "chat", fake.base_url),)
        admin.state["version"] = 2

    arriving = asyncio.create_task(snapshot_arrives())
    doc = {"candidate": {"provider": "node-1", "apiKey": KEY}, "configVersion": 2}
    out = await admin.call("TestConnection", doc)
    await arriving
    assert out["valid"] is True and out["provider"] == "node-1"
    (seen,) = fake.requests
    assert seen.headers["Authorization"] == f"Bearer {KEY}"


async def test_a_config_version_never_reached_ends_in_not_found(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_service, "_CATCH_UP_S", 0.2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.call("TestConnection", {"candidate": {"provider": "node-1", "apiKey": KEY}, "configVersion": 9})
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("version", [-1, "2", 1.5, True])
async def test_a_malformed_config_version_is_invalid_argument(admin: Admin, version: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.call(
            "TestConnection", {"candidate": {"provider": "openai", "apiKey": KEY}, "configVersion": version}
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("configVersion")


async def test_proxy_test_goes_through_the_proxy_with_its_credentials(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)
    proxy = FakeProxy(required_auth=basic_auth("user", "p4ss-word"))
    await proxy.start()
    try:
        test_url = f"{fake.base_url}/models"
        doc = {"proxyUrl": f"http://user:p4ss-word@127.0.0.1:{proxy.port}", "testUrl": test_url}
        result = await admin.call("TestProxy", doc)
        assert result["success"] is True
        assert result["status"] == 401  # no API key: the test URL refused, but the path through the proxy works
        (seen,) = proxy.seen
        assert (seen.method, seen.target) == ("GET", test_url)
        assert seen.proxy_authorization == "Basic dXNlcjpwNHNzLXdvcmQ="
        assert len(fake.requests) == 1

        wrong = await admin.call("TestProxy", {**doc, "proxyUrl": f"http://user:wrong-pass@127.0.0.1:{proxy.port}"})
        assert wrong["success"] is False and wrong["status"] == 407
        assert "p4ss" not in wrong["error"] and "wrong-pass" not in wrong["error"]
    finally:
        await proxy.stop()


async def test_an_unreachable_proxy_fails_without_leaking_its_password(admin: Admin) -> None:
    doc = {"proxyUrl": f"http://u:secret-pw@127.0.0.1:{free_port()}", "testUrl": "http://127.0.0.1:9/"}
    result = await admin.call("TestProxy", doc)
    assert result["success"] is False
    assert "secret-pw" not in result["error"]
    assert isinstance(result["latencyMs"], int)


@pytest.mark.parametrize("doc", [{"testUrl": "http://x/"}, {"proxyUrl": "socks9://x:1", "testUrl": "http://x/"}])
async def test_a_malformed_proxy_test_is_invalid_argument(admin: Admin, doc: dict[str, str]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await admin.call("TestProxy", doc)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("proxyUrl")


async def test_a_connections_options_fill_the_path_parameters(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)
    candidate = {"provider": "azure", "apiKey": KEY, "baseUrl": fake.base_url, "options": {"apiVersion": "2025-01-01"}}
    result = await admin.call("TestConnection", {"candidate": candidate})
    assert result["status"] is not None
    (seen,) = fake.requests
    assert seen.path == "/v1/models?api-version=2025-01-01"
    assert seen.headers["api-key"] == KEY


async def test_a_provider_without_a_default_endpoint_needs_a_base_url(admin: Admin) -> None:
    result = await admin.call("TestConnection", {"candidate": {"provider": "azure", "apiKey": KEY}})
    assert result["valid"] is False
    assert "base URL" in result["error"]


async def test_connection_tests_leave_through_the_providers_saved_proxy(admin: Admin, fakes: Any) -> None:
    fake = await fakes(FakeOpenAI)
    proxy = FakeProxy()
    await proxy.start()
    try:
        admin.settings["proxy"] = {"enabled": True, "url": proxy.url, "providers": {"anthropic": {"enabled": False}}}
        result = await admin.call("TestConnection", admin.stored("openai", fake.base_url))
        assert result["valid"] is True
        assert [(s.method, s.target) for s in proxy.seen] == [("GET", f"{fake.base_url}/models")]
        models = await admin.call("ListModels", admin.stored("openai", fake.base_url))
        assert models["source"] == "live" and len(proxy.seen) == 2
    finally:
        await proxy.stop()
