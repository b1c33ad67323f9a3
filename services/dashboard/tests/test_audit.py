"""``/api/compliance/audit-log``: logins, credential and key changes, with actor and address; secrets redacted."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_dashboard.audit import REDACTED, redact

from .conftest import PASSWORD, Dashboard


async def entries(dash: Dashboard, limit: int = 100) -> list[dict[str, Any]]:
    response = await dash.admin.get("/api/compliance/audit-log", params={"limit": limit})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["entries"])
    return list(body["entries"])


async def test_logins_and_changes_are_recorded_with_actor_address_and_redacted_secrets(dash: Dashboard) -> None:
    await dash.client.post("/api/auth/login", json={"password": "wrong"}, headers={"X-Forwarded-For": "9.9.9.9"})
    created = await dash.admin.post(
        "/api/providers",
        json={"provider": "openai", "name": "main", "apiKey": "sk-very-secret", "baseUrl": "http://x.test/v1"},
        headers={"X-Forwarded-For": "1.2.3.4, 10.0.0.7"},
    )
    assert created.status_code == 201
    key = (await dash.admin.post("/api/keys", json={"name": "ci", "scopes": ["chat"]})).json()
    await dash.admin.delete(f"/api/keys/{key['id']}")

    log = await entries(dash)
    actions = [(e["action"], e["status"], e["actorKind"]) for e in log]
    assert actions[:4] == [
        (f"DELETE /api/keys/{key['id']}", 200, "session"),
        ("POST /api/keys", 201, "session"),
        ("POST /api/providers", 201, "session"),
        ("POST /api/auth/login", 401, "anonymous"),
    ]
    provider_entry, failed_login = log[2], log[3]
    assert provider_entry["ip"] == "10.0.0.7"  # the address the edge appended, not what the client claimed
    assert provider_entry["details"]["apiKey"] == REDACTED
    assert provider_entry["details"]["baseUrl"] == "http://x.test/v1"
    assert failed_login["details"] == {"password": REDACTED}
    assert "sk-very-secret" not in str(log)
    assert key["key"] not in str(log)
    assert PASSWORD not in str(log)


async def test_reads_are_not_recorded(dash: Dashboard) -> None:
    before = len(await entries(dash))
    await dash.admin.get("/api/providers")
    await dash.admin.get("/api/keys")
    assert len(await entries(dash)) == before


async def test_an_admin_key_is_named_as_the_actor(dash: Dashboard) -> None:
    admin_key = (await dash.admin.post("/api/keys", json={"name": "ops", "scopes": ["admin"]})).json()
    async with dash.new_client(headers={"Authorization": f"Bearer {admin_key['key']}"}) as ops:
        assert (await ops.post("/api/keys", json={"name": "made-by-ops", "scopes": ["chat"]})).status_code == 201
    newest = (await entries(dash, limit=1))[0]
    assert (newest["actor"], newest["actorKind"]) == (admin_key["id"], "api_key")


async def test_the_log_needs_admin_and_a_sane_limit(dash: Dashboard) -> None:
    assert (await dash.client.get("/api/compliance/audit-log")).status_code == 401
    assert (await dash.admin.get("/api/compliance/audit-log", params={"limit": 0})).status_code in (400, 422)
    assert (await dash.admin.get("/api/compliance/audit-log", params={"limit": 5000})).status_code in (400, 422)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"apiKey": "x", "name": "n"}, {"apiKey": REDACTED, "name": "n"}),
        (
            {"headers": {"Authorization": "Bearer x", "X-Trace": "1"}},
            {"headers": {"Authorization": REDACTED, "X-Trace": "1"}},
        ),
        ([{"password": "p"}, {"key": "k", "keyId": "id"}], [{"password": REDACTED}, {"key": REDACTED, "keyId": "id"}]),
        ({"client_secret": "s", "access_token": "t"}, {"client_secret": REDACTED, "access_token": REDACTED}),
        (
            {"url": "http://bob:s3cret@proxy:3128", "testUrl": "https://api.test/v1?a=b@c"},
            {"url": f"http://bob:{REDACTED}@proxy:3128", "testUrl": "https://api.test/v1?a=b@c"},
        ),
        ({"proxy": "https://only-user@proxy:1"}, {"proxy": "https://only-user@proxy:1"}),
        # a raw "@" in the password: urlsplit (and so the proxy test) reads the password up to the last "@"
        ({"url": "http://bob:p@ss@proxy:3128"}, {"url": f"http://bob:{REDACTED}@proxy:3128"}),
    ],
)
def test_redaction(value: Any, expected: Any) -> None:
    assert redact(value) == expected


def test_redaction_of_long_text_is_linear() -> None:
    # a 100 kB word, and one with a scheme-like run, ran the URL pattern quadratically (minutes) before
    word = "x" * 100_001
    assert redact({"suffixPrompt": word}) == {"suffixPrompt": word}
    tricky = "x" * 50_000 + "://" + "a" * 50_000 + ":" + "b" * 50_000
    assert redact(tricky) == tricky
    assert redact("y" * 50_000 + " http://u:pw@proxy:1") == "y" * 50_000 + f" http://u:{REDACTED}@proxy:1"
