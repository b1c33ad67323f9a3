"""``/api/settings/system-prompt`` and ``/api/settings/thinking-budget``: defaults, merges, validation, the
snapshot and the audit log."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_core.request_settings import SystemPrompt, ThinkingBudget
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error


async def test_system_prompt_defaults_merge_and_legacy_prompt(dash: Dashboard) -> None:
    path = "/api/settings/system-prompt"
    assert (await dash.admin.get(path)).json() == {"enabled": True, "prefixPrompt": "", "suffixPrompt": ""}
    first = await dash.admin.put(path, json={"prefixPrompt": "You work for ACME."})
    assert first.json() == {"enabled": True, "prefixPrompt": "You work for ACME.", "suffixPrompt": ""}
    legacy = await dash.admin.put(path, json={"prompt": "Answer in French."})  # OmniRoute's single prompt
    assert legacy.json()["suffixPrompt"] == "Answer in French."
    off = await dash.admin.put(path, json={"enabled": False})
    assert off.json() == {"enabled": False, "prefixPrompt": "You work for ACME.", "suffixPrompt": "Answer in French."}
    assert (await dash.admin.get(path)).json() == off.json()
    snap = await load_snapshot(dash.ctx.pool)
    assert SystemPrompt.parse(snap.settings["systemPrompt"]) == SystemPrompt(
        False, "You work for ACME.", "Answer in French."
    )
    actions = [e["action"] for e in (await dash.admin.get("/api/compliance/audit-log")).json()["entries"]]
    assert actions.count(f"PUT {path}") == 3


async def test_thinking_budget_defaults_merge(dash: Dashboard) -> None:
    path = "/api/settings/thinking-budget"
    assert (await dash.admin.get(path)).json() == {
        "mode": "passthrough",
        "customBudget": 10240,
        "effortLevel": "medium",
    }
    custom = await dash.admin.put(path, json={"mode": "custom", "customBudget": 2048})
    assert custom.json() == {"mode": "custom", "customBudget": 2048, "effortLevel": "medium"}
    adaptive = await dash.admin.put(path, json={"mode": "adaptive", "effortLevel": "high"})
    assert adaptive.json() == {"mode": "adaptive", "customBudget": 2048, "effortLevel": "high"}
    snap = await load_snapshot(dash.ctx.pool)
    assert ThinkingBudget.parse(snap.settings["thinkingBudget"]) == ThinkingBudget("adaptive", 2048, "high")
    assert ThinkingBudget.parse(snap.settings["thinkingBudget"]).budget == 24576


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/api/settings/system-prompt", {"prefixPrompt": 3}, "prefixPrompt"),
        ("/api/settings/system-prompt", {"enabled": "yes"}, "enabled"),
        ("/api/settings/system-prompt", {"position": "top"}, "position"),
        ("/api/settings/system-prompt", {"suffixPrompt": "x" * 100_001}, "suffixPrompt"),
        ("/api/settings/thinking-budget", {"mode": "max"}, "mode"),
        ("/api/settings/thinking-budget", {"customBudget": -1}, "customBudget"),
        ("/api/settings/thinking-budget", {"customBudget": 200_000}, "customBudget"),
        ("/api/settings/thinking-budget", {"customBudget": 1.5}, "customBudget"),
        ("/api/settings/thinking-budget", {"effortLevel": "extreme"}, "effortLevel"),
    ],
)
async def test_invalid_settings_are_400(dash: Dashboard, path: str, body: dict[str, Any], needle: str) -> None:
    response = await dash.admin.put(path, json=body)
    assert_error(response, 400, "invalid_request_error")
    assert needle in response.json()["error"]["message"]
    assert_error(await dash.admin.put(path, content=b"[1]"), 400, "invalid_request_error")


async def test_requires_admin(dash: Dashboard) -> None:
    for path in ("/api/settings/system-prompt", "/api/settings/thinking-budget"):
        assert_error(await dash.client.get(path), 401, "authentication_error")
        assert_error(await dash.client.put(path, json={}), 401, "authentication_error")
