"""``/api/models/alias``: create, repoint, delete; shadowing, cycles, unresolvable targets, references; the snapshot
and the audit log."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_core.snapshot import parse_snapshot
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error


async def alias(dash: Dashboard, name: str, model: str, status: int = 201) -> dict[str, Any]:
    response = await dash.admin.post("/api/models/alias", json={"alias": name, "model": model})
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_repoint_list_delete_and_publish(dash: Dashboard) -> None:
    assert await alias(dash, "fast", "openai/gpt-4o-mini") == {
        "success": True,
        "alias": "fast",
        "model": "openai/gpt-4o-mini",
    }
    await alias(dash, "fast", "groq/llama-3.3-70b-versatile", status=200)  # repointed
    put = await dash.admin.put("/api/models/alias", json={"alias": "smart", "model": "claude-sonnet-4-5"})
    assert put.status_code == 201, put.text
    await alias(dash, "Qwen/Qwen3-8B", "fast")  # a slash is fine when the part before it is no provider
    listed = (await dash.admin.get("/api/models/alias")).json()
    assert listed == {
        "aliases": {"Qwen/Qwen3-8B": "fast", "fast": "groq/llama-3.3-70b-versatile", "smart": "claude-sonnet-4-5"},
        "total": 3,
    }
    snap = parse_snapshot((await load_snapshot(dash.ctx.pool)).to_json())
    assert dict(snap.aliases) == listed["aliases"]

    assert_error(await dash.admin.delete("/api/models/alias?alias=fast"), 409, "invalid_request_error")  # used
    deleted = await dash.admin.delete("/api/models/alias", params={"alias": "Qwen/Qwen3-8B"})
    assert deleted.json() == {"success": True, "alias": "Qwen/Qwen3-8B"}
    assert (await dash.admin.delete("/api/models/alias/fast")).status_code == 200
    assert (await dash.admin.get("/api/models/alias")).json()["aliases"] == {"smart": "claude-sonnet-4-5"}

    entries = (await dash.admin.get("/api/compliance/audit-log")).json()["entries"]
    actions = [e["action"] for e in entries]
    assert "POST /api/models/alias" in actions and "DELETE /api/models/alias/fast" in actions
    assert next(e for e in entries if e["action"] == "PUT /api/models/alias")["details"] == {
        "alias": "smart",
        "model": "claude-sonnet-4-5",
    }


async def test_requires_admin(dash: Dashboard) -> None:
    assert_error(await dash.client.get("/api/models/alias"), 401, "authentication_error")
    assert_error(
        await dash.client.post("/api/models/alias", json={"alias": "a", "model": "openai/o3"}),
        401,
        "authentication_error",
    )
    assert_error(await dash.client.delete("/api/models/alias?alias=a"), 401, "authentication_error")


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"alias": "openai/fast", "model": "openai/o3"}, "alias_shadows_provider", "provider prefix 'openai'"),
        ({"alias": "oai/x", "model": "openai/o3"}, "alias_shadows_provider", "'oai'"),
        ({"alias": "claude", "model": "openai/o3"}, "alias_shadows_provider", "'claude'"),
        ({"alias": "x", "model": "nope/model"}, "alias_target_invalid", "unknown provider 'nope'"),
        ({"alias": "x", "model": "no-such-model"}, "alias_target_invalid", "not found"),
        ({"alias": "x", "model": "x"}, "alias_cycle", "x -> x"),
        ({"alias": "x", "model": "openai/"}, "alias_target_invalid", "names no model"),
        ({"alias": "has space", "model": "openai/o3"}, "", "alias"),
        ({"alias": "", "model": "openai/o3"}, "", "alias"),
        ({"alias": "x"}, "", "model"),
        ({"alias": "x", "model": 3}, "", "model"),
    ],
)
async def test_invalid_aliases_are_400(dash: Dashboard, body: dict[str, Any], code: str, needle: str) -> None:
    response = await dash.admin.post("/api/models/alias", json=body)
    assert_error(response, 400, "invalid_request_error")
    error = response.json()["error"]
    assert needle in error["message"]
    if code:
        assert error["code"] == code


async def test_cycles_through_aliases_and_combos_are_refused(dash: Dashboard) -> None:
    await alias(dash, "a", "openai/o3")
    await alias(dash, "b", "a")
    response = await dash.admin.post("/api/models/alias", json={"alias": "a", "model": "b"})
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["message"] == "alias cycle: a -> b -> a"
    # a combo step may name what does not exist yet; an alias of that name would close a loop through the combo
    combo = await dash.admin.post("/api/combos", json={"name": "team", "models": ["c", "openai/o3"]})
    assert combo.status_code == 201, combo.text
    response = await dash.admin.post("/api/models/alias", json={"alias": "c", "model": "team"})
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["message"] == "alias cycle: c -> team -> c"


async def test_aliases_and_combos_do_not_shadow_each_other(dash: Dashboard) -> None:
    assert (await dash.admin.post("/api/combos", json={"name": "team", "models": ["openai/o3"]})).status_code == 201
    response = await dash.admin.post("/api/models/alias", json={"alias": "team", "model": "openai/o3"})
    assert_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["code"] == "alias_shadows_combo"

    await alias(dash, "smart", "team")  # an alias may point at a combo ...
    in_use = await dash.admin.delete("/api/combos/team")  # ... which then cannot go away under it
    assert_error(in_use, 409, "invalid_request_error")
    assert "alias 'smart'" in in_use.json()["error"]["message"]
    renamed = await dash.admin.put("/api/combos/team", json={"name": "team2"})
    assert_error(renamed, 409, "invalid_request_error")

    clash = await dash.admin.post("/api/combos", json={"name": "smart", "models": ["openai/o3"]})
    assert_error(clash, 400, "invalid_request_error")
    assert clash.json()["error"]["code"] == "combo_shadows_alias"


async def test_delete_failures(dash: Dashboard) -> None:
    assert_error(await dash.admin.delete("/api/models/alias?alias=ghost"), 404, "not_found_error")
    assert_error(await dash.admin.delete("/api/models/alias"), 400, "invalid_request_error")
