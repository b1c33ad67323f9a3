"""``/api/combos``: CRUD by id or name, validation, cycles and depth, and the combos in the published snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_core.snapshot import ComboStep, parse_snapshot
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error


async def create(dash: Dashboard, name: str, models: list[Any], **fields: Any) -> dict[str, Any]:
    response = await dash.admin.post("/api/combos", json={"name": name, "models": models, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_crud_by_id_and_by_name(dash: Dashboard) -> None:
    created = await create(
        dash,
        "fast",
        ["openai/gpt-4o-mini", {"model": "groq/llama-3.3-70b-versatile", "weight": 3, "connectionId": "c-1"}],
        strategy="weighted",
        config={"maxRetries": 1, "timeoutMs": 5000},
    )
    assert created["name"] == "fast" and created["strategy"] == "weighted"
    assert created["models"] == [
        "openai/gpt-4o-mini",
        {"model": "groq/llama-3.3-70b-versatile", "weight": 3, "connectionId": "c-1"},
    ]
    assert created["config"] == {"maxRetries": 1, "timeoutMs": 5000}
    by_id = (await dash.admin.get(f"/api/combos/{created['id']}")).json()
    by_name = (await dash.admin.get("/api/combos/fast")).json()
    assert by_id == by_name == created
    listed = (await dash.admin.get("/api/combos")).json()
    assert listed["total"] == 1 and listed["combos"] == [created]

    updated = await dash.admin.put("/api/combos/fast", json={"strategy": "priority", "models": ["openai/o3"]})
    assert updated.status_code == 200, updated.text
    assert updated.json()["strategy"] == "priority"
    assert updated.json()["models"] == ["openai/o3"]
    assert updated.json()["config"] == {"maxRetries": 1, "timeoutMs": 5000}  # omitted: kept

    deleted = await dash.admin.delete(f"/api/combos/{created['id']}")
    assert deleted.status_code == 200
    assert_error(await dash.admin.get("/api/combos/fast"), 404, "not_found_error")


async def test_requires_admin(dash: Dashboard) -> None:
    assert_error(await dash.client.get("/api/combos"), 401, "authentication_error")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "x", "strategy": "fastest", "models": ["openai/gpt-4o"]}, "unknown strategy"),
        ({"name": "x", "models": []}, "models"),
        ({"name": "x"}, "models"),
        ({"name": "x", "models": [""]}, "models"),
        ({"name": "x", "models": [{"weight": 2}]}, "model"),
        ({"name": "x", "models": [{"model": "a/b", "weight": -1}]}, "weight"),
        ({"name": "x", "models": [{"model": "a/b", "colour": "red"}]}, "colour"),
        ({"name": "x", "models": [42]}, "models"),
        ({"name": "openai/gpt-4o", "models": ["openai/gpt-4o"]}, "name"),
        ({"name": "x", "models": ["a/b"], "config": {"maxRetries": 99}}, "maxRetries"),
        ({"name": "x", "models": ["a/b"], "config": {"retries": 1}}, "retries"),
        ({"name": "x", "models": ["x"]}, "cycle"),
    ],
)
async def test_invalid_bodies_are_400(dash: Dashboard, body: dict[str, Any], needle: str) -> None:
    response = await dash.admin.post("/api/combos", json=body)
    assert_error(response, 400, "invalid_request_error")
    assert needle in response.json()["error"]["message"]


async def test_cycles_through_other_combos_and_depth_are_refused(dash: Dashboard) -> None:
    await create(dash, "a", ["openai/gpt-4o"])
    await create(dash, "b", ["a", "openai/o3"])
    await create(dash, "c", ["b"])  # c -> b -> a: depth 3 is allowed
    too_deep = await dash.admin.post("/api/combos", json={"name": "d", "models": ["c"]})
    assert_error(too_deep, 400, "invalid_request_error")
    assert too_deep.json()["error"]["code"] == "combo_too_deep"
    cycle = await dash.admin.put("/api/combos/a", json={"models": ["c"]})
    assert_error(cycle, 400, "invalid_request_error")
    assert cycle.json()["error"]["code"] == "combo_cycle"
    assert (await dash.admin.get("/api/combos/a")).json()["models"] == ["openai/gpt-4o"]


async def test_names_are_unique_and_referenced_combos_are_kept(dash: Dashboard) -> None:
    await create(dash, "a", ["openai/gpt-4o"])
    await create(dash, "b", ["a"])
    assert_error(
        await dash.admin.post("/api/combos", json={"name": "a", "models": ["x/y"]}), 409, "invalid_request_error"
    )
    assert_error(await dash.admin.delete("/api/combos/a"), 409, "invalid_request_error")
    assert_error(await dash.admin.put("/api/combos/a", json={"name": "z"}), 409, "invalid_request_error")
    assert_error(await dash.admin.put("/api/combos/b", json={"name": "a"}), 409, "invalid_request_error")
    assert_error(await dash.admin.put("/api/combos/nope", json={"name": "q"}), 404, "not_found_error")
    assert_error(await dash.admin.delete("/api/combos/nope"), 404, "not_found_error")


async def test_combos_are_in_the_published_snapshot(dash: Dashboard) -> None:
    await create(
        dash,
        "mix",
        ["openai/gpt-4o", {"model": "groq/x", "weight": 2}],
        strategy="round-robin",
        config={"maxAttempts": 4},
    )
    snap = parse_snapshot((await load_snapshot(dash.ctx.pool)).to_json())
    combo = snap.combos_by_name["mix"]
    assert combo.strategy == "round-robin"
    assert combo.steps == (ComboStep("openai/gpt-4o"), ComboStep("groq/x", weight=2))
    assert combo.config == {"maxAttempts": 4}
