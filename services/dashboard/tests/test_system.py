"""Public probes and metrics."""

from __future__ import annotations

from .conftest import Dashboard


async def test_health_is_public(dash: Dashboard) -> None:
    response = await dash.client.get("/api/monitoring/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["nats"] == "connected"
    assert body["configVersion"] >= 1


async def test_init_is_public(dash: Dashboard) -> None:
    assert (await dash.client.get("/api/init")).json() == {"initialized": True, "requireLogin": True}


async def test_metrics(dash: Dashboard) -> None:
    await dash.client.post("/api/auth/login", json={"password": "wrong"})
    response = await dash.client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'omniroute_dashboard_logins_total{outcome="denied"} 1.0' in text
    assert 'omniroute_dashboard_logins_total{outcome="ok"} 1.0' in text  # the fixture's login
    assert "omniroute_dashboard_config_version_published" in text
    assert "process_cpu_seconds_total" in text


async def test_request_id_does_not_break_requests(dash: Dashboard) -> None:
    response = await dash.client.get("/api/monitoring/health", headers={"x-request-id": "abc-123"})
    assert response.status_code == 200


async def test_unknown_non_api_path_is_404_envelope(dash: Dashboard) -> None:
    response = await dash.client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
