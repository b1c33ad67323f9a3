"""``/api/provider-nodes`` and ``/api/provider-models``: CRUD, encrypted custom headers, prefix clashes,
validation, what reaches the snapshot and the audit log."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_core import jsonx
from omniroute_core.formats import FORMAT_BY_NAME
from omniroute_core.snapshot import parse_snapshot
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error

NODE = {
    "name": "Local vLLM",
    "prefix": "vllm",
    "baseUrl": "http://10.0.0.5:8000/v1/",
    "headers": {"X-Tenant": "team-a", "X-Upstream-Token": "tok-1234567890abcdef"},
}


async def create(dash: Dashboard, **fields: Any) -> dict[str, Any]:
    response = await dash.admin.post("/api/provider-nodes", json={**NODE, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_with_a_key_lists_masks_and_publishes(dash: Dashboard) -> None:
    created = await create(dash, apiKey="sk-node-secret-key")
    node = created["node"]
    assert node["id"].startswith("openai-compatible-")
    assert {k: node[k] for k in ("prefix", "name", "type", "apiType", "format", "baseUrl", "chatPath")} == {
        "prefix": "vllm",
        "name": "Local vLLM",
        "type": "openai-compatible",
        "apiType": "chat",
        "format": "openai",
        "baseUrl": "http://10.0.0.5:8000/v1",
        "chatPath": "/chat/completions",
    }
    assert node["headers"] == {"X-Tenant": "team-a", "X-Upstream-Token": "tok...cdef"}
    assert (node["connections"], node["activeConnections"], node["shadowed"]) == (1, 1, False)
    assert created["connectionId"]

    # the headers are encrypted at rest and in the snapshot; the connection carries the key, encrypted
    stored = await dash.ctx.pool.fetchval("SELECT headers_enc FROM provider_nodes WHERE id = $1", node["id"])
    assert "team-a" not in stored and "tok-" not in stored
    assert jsonx.loads(dash.ctx.cipher.decrypt(stored, aad=node["id"])) == NODE["headers"]
    snap = parse_snapshot((await load_snapshot(dash.ctx.pool)).to_json())
    (published,) = snap.nodes
    assert published.prefix == "vllm" and published.headers_enc == stored
    spec = snap.nodes_by_prefix["vllm"]
    assert (spec.id, spec.format, spec.base_url, spec.auth) == (
        node["id"],
        FORMAT_BY_NAME["openai"],
        "http://10.0.0.5:8000/v1",
        "bearer",
    )
    (conn,) = snap.connections_by_provider[node["id"]]
    assert conn.id == created["connectionId"] and conn.base_url == ""
    assert dash.ctx.cipher.decrypt(conn.api_key_enc, aad=conn.id) == "sk-node-secret-key"

    by_prefix = (await dash.admin.get("/api/provider-nodes/vllm")).json()["node"]
    by_id = (await dash.admin.get(f"/api/provider-nodes/{node['id']}")).json()["node"]
    assert by_prefix == by_id == node
    assert (await dash.admin.get("/api/provider-nodes")).json() == {"nodes": [node], "total": 1}

    audit = (await dash.admin.get("/api/compliance/audit-log")).json()["entries"]
    entry = next(e for e in audit if e["action"] == "POST /api/provider-nodes")
    assert entry["details"]["apiKey"] == "[redacted]"
    assert entry["details"]["headers"] == {"X-Tenant": "team-a", "X-Upstream-Token": "[redacted]"}
    assert entry["status"] == 201


async def test_anthropic_node_without_key_and_custom_paths(dash: Dashboard) -> None:
    created = await create(
        dash,
        prefix="corp-claude",
        type="anthropic-compatible",
        baseUrl="https://llm.corp.example/anthropic/v1/messages",
        customHeaders={"x-api-key-extra": "abc"},
        headers=None,
    )
    node = created["node"]
    assert created["connectionId"] is None and node["connections"] == 0
    assert (node["apiType"], node["format"], node["baseUrl"], node["chatPath"]) == (
        "messages",
        "anthropic",
        "https://llm.corp.example/anthropic/v1",
        "/messages",
    )
    assert node["headers"] == {"x-api-key-extra": "****"}
    snap = await load_snapshot(dash.ctx.pool)
    spec = snap.node_specs[node["id"]]
    assert spec.auth == "x-api-key" and spec.headers == {"anthropic-version": "2023-06-01"}


async def test_update_keeps_masked_secrets_and_renames_the_prefix(dash: Dashboard) -> None:
    node = (await create(dash))["node"]
    shown = node["headers"]
    updated = await dash.admin.put(
        "/api/provider-nodes/vllm",
        json={"prefix": "vllm2", "headers": {**shown, "X-Tenant": "team-b"}, "apiType": "responses"},
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()["node"]
    assert (body["prefix"], body["apiType"], body["format"], body["chatPath"]) == (
        "vllm2",
        "responses",
        "openai-responses",
        "/responses",
    )
    stored = await dash.ctx.pool.fetchval("SELECT headers_enc FROM provider_nodes WHERE id = $1", node["id"])
    assert jsonx.loads(dash.ctx.cipher.decrypt(stored, aad=node["id"])) == {
        "X-Tenant": "team-b",
        "X-Upstream-Token": "tok-1234567890abcdef",  # the masked value sent back kept the secret
    }
    assert_error(await dash.admin.get("/api/provider-nodes/vllm"), 404, "not_found_error")
    changed_type = await dash.admin.put("/api/provider-nodes/vllm2", json={"type": "anthropic-compatible"})
    assert_error(changed_type, 400, "invalid_request_error")
    assert_error(await dash.admin.put("/api/provider-nodes/ghost", json={"name": "x"}), 404, "not_found_error")


async def test_delete_removes_connections_and_models_unless_referenced(dash: Dashboard) -> None:
    node = (await create(dash, apiKey=""))["node"]
    added = await dash.admin.post("/api/provider-models", json={"provider": "vllm", "modelId": "qwen3-8b"})
    assert added.status_code == 201, added.text
    assert (
        await dash.admin.post("/api/models/alias", json={"alias": "q", "model": "vllm/qwen3-8b"})
    ).status_code == 201
    in_use = await dash.admin.delete("/api/provider-nodes/vllm")
    assert_error(in_use, 409, "invalid_request_error")
    assert "alias 'q'" in in_use.json()["error"]["message"]
    assert (await dash.admin.delete("/api/models/alias?alias=q")).status_code == 200
    deleted = await dash.admin.delete("/api/provider-nodes/vllm")
    assert deleted.status_code == 200, deleted.text
    assert len(deleted.json()["deletedConnections"]) == 1
    snap = await load_snapshot(dash.ctx.pool)
    assert not snap.nodes and not snap.custom_models and node["id"] not in snap.connections_by_provider
    assert_error(await dash.admin.delete("/api/provider-nodes/vllm"), 404, "not_found_error")


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"prefix": "openai"}, 409, "catalog provider 'openai'"),
        ({"prefix": "claude"}, 409, "catalog provider 'anthropic'"),
        ({"prefix": "Bad Prefix"}, 400, "prefix"),
        ({"prefix": "a/b"}, 400, "prefix"),
        ({"baseUrl": "ftp://x"}, 400, "baseUrl"),
        ({"baseUrl": "http://x/v1?key=1"}, 400, "query"),
        ({"baseUrl": None}, 400, "baseUrl"),
        ({"type": "soap-compatible"}, 400, "type"),
        ({"apiType": "messages"}, 400, "apiType 'messages' is not valid for openai-compatible"),
        ({"headers": {"bad header": "x"}}, 400, "not a valid header name"),
        ({"headers": {"X-A": "line\nbreak"}}, 400, "line break"),
        ({"chatPath": "chat"}, 400, "chatPath"),
        ({"name": ""}, 400, "name"),
    ],
)
async def test_invalid_nodes(dash: Dashboard, body: dict[str, Any], status: int, needle: str) -> None:
    response = await dash.admin.post("/api/provider-nodes", json={**NODE, **body})
    assert_error(response, status, "invalid_request_error")
    assert needle in response.json()["error"]["message"]


async def test_prefix_clashes_with_nodes_and_aliases(dash: Dashboard) -> None:
    await create(dash)
    again = await dash.admin.post("/api/provider-nodes", json={**NODE, "name": "other"})
    assert_error(again, 409, "invalid_request_error")
    assert again.json()["error"]["code"] == "prefix_taken"
    assert (
        await dash.admin.post("/api/models/alias", json={"alias": "mine/fast", "model": "openai/o3"})
    ).status_code == 201
    shadow = await dash.admin.post("/api/provider-nodes", json={**NODE, "prefix": "mine"})
    assert_error(shadow, 409, "invalid_request_error")
    assert shadow.json()["error"]["code"] == "prefix_shadows_alias"


async def test_requires_admin(dash: Dashboard) -> None:
    for method, path in [
        ("GET", "/api/provider-nodes"),
        ("POST", "/api/provider-nodes"),
        ("PUT", "/api/provider-nodes/x"),
        ("DELETE", "/api/provider-nodes/x"),
        ("GET", "/api/provider-models"),
        ("POST", "/api/provider-models"),
        ("DELETE", "/api/provider-models?provider=openai&model=x"),
    ]:
        assert_error(await dash.client.request(method, path), 401, "authentication_error")


async def test_custom_models_crud(dash: Dashboard) -> None:
    body = {"provider": "oai", "modelId": "gpt-5-preview", "type": "chat", "prices": {"input": 1.25, "output": 10}}
    created = await dash.admin.post("/api/provider-models", json={**body, "reasoning": True})
    assert created.status_code == 201, created.text
    model = created.json()["model"]
    assert {k: model[k] for k in ("provider", "model", "id", "type", "prices", "reasoning")} == {
        "provider": "openai",  # the alias 'oai' is stored as the catalog id
        "model": "gpt-5-preview",
        "id": "openai/gpt-5-preview",
        "type": "chat",
        "prices": {"input": 1.25, "output": 10},
        "reasoning": True,
    }
    updated = await dash.admin.post("/api/provider-models", json={**body, "type": "embedding", "modelName": "G5"})
    assert updated.status_code == 200 and updated.json()["model"]["name"] == "G5"
    node = (await create(dash))["node"]
    on_node = await dash.admin.post("/api/provider-models", json={"provider": node["id"], "model": "qwen3-8b"})
    assert on_node.json()["model"]["id"] == "vllm/qwen3-8b"

    listed = (await dash.admin.get("/api/provider-models")).json()
    assert [m["id"] for m in listed["models"]] == ["openai/gpt-5-preview", "vllm/qwen3-8b"]
    only = (await dash.admin.get("/api/provider-models?provider=vllm")).json()
    assert [m["id"] for m in only["models"]] == ["vllm/qwen3-8b"]
    snap = await load_snapshot(dash.ctx.pool)
    assert snap.custom_models_by_key[("openai", "gpt-5-preview")].type == "embedding"
    assert snap.node_specs[node["id"]].models == ("qwen3-8b",)

    removed = await dash.admin.delete("/api/provider-models", params={"provider": "openai", "model": "gpt-5-preview"})
    assert removed.json() == {"removed": True, "provider": "openai", "model": "gpt-5-preview"}
    missing = await dash.admin.delete("/api/provider-models", params={"provider": "openai", "model": "gpt-5-preview"})
    assert_error(missing, 404, "not_found_error")
    assert_error(await dash.admin.delete("/api/provider-models?provider=openai"), 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"provider": "nope", "modelId": "m"}, "unknown provider 'nope'"),
        ({"provider": "openai"}, "modelId"),
        ({"provider": "openai", "modelId": "has space"}, "modelId"),
        ({"provider": "openai", "modelId": "m", "type": "video"}, "type"),
        ({"provider": "openai", "modelId": "m", "prices": {"input": -1}}, "prices"),
        ({"provider": "openai", "modelId": "m", "prices": {"cached": 1}}, "cached"),
        ({"provider": "openai", "modelId": "m", "reasoning": "yes"}, "reasoning"),
    ],
)
async def test_invalid_custom_models(dash: Dashboard, body: dict[str, Any], needle: str) -> None:
    response = await dash.admin.post("/api/provider-models", json=body)
    assert_error(response, 400, "invalid_request_error")
    assert needle in response.json()["error"]["message"]
