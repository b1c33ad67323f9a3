"""``/api/resilience``: thresholds per profile (merged, validated) and the reset epoch, both in the snapshot."""

from __future__ import annotations

from omniroute_dashboard.resilience import DEFAULTS
from omniroute_dashboard.store import load_snapshot

from .conftest import Dashboard
from .test_auth import assert_error


async def test_defaults_update_and_reset_reach_the_snapshot(dash: Dashboard) -> None:
    got = (await dash.admin.get("/api/resilience")).json()
    assert got == {"profiles": DEFAULTS, "resetEpoch": 0}
    put = await dash.admin.put(
        "/api/resilience", json={"profiles": {"connection": {"failureThreshold": 5, "cooldownMs": 2000}}}
    )
    assert put.status_code == 200, put.text
    assert put.json()["profiles"]["connection"]["failureThreshold"] == 5
    assert put.json()["profiles"]["provider"] == DEFAULTS["provider"]
    again = await dash.admin.put("/api/resilience", json={"profiles": {"connection": {"maxBackoffMs": 9000}}})
    assert again.json()["profiles"]["connection"]["cooldownMs"] == 2000  # merged, not replaced
    reset = await dash.admin.post("/api/resilience/reset")
    assert reset.json() == {"reset": True, "resetEpoch": 1}
    snap = await load_snapshot(dash.ctx.pool)
    assert snap.settings["resilience"] == {
        "profiles": {"connection": {"failureThreshold": 5, "cooldownMs": 2000, "maxBackoffMs": 9000}},
        "resetEpoch": 1,
    }


async def test_validation_and_auth(dash: Dashboard) -> None:
    for body in (
        {"profiles": {"oauth": {"failureThreshold": 1}}},
        {"profiles": {"connection": {"failureThreshold": 0}}},
        {"profiles": {"connection": {"threshold": 3}}},
        {},
    ):
        assert_error(await dash.admin.put("/api/resilience", json=body), 400, "invalid_request_error")
    assert_error(await dash.client.get("/api/resilience"), 401, "authentication_error")
    assert_error(await dash.client.post("/api/resilience/reset"), 401, "authentication_error")
