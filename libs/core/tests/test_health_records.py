"""The Redis records executor and dashboard share: health records and keys, rate-limit header parsing, and the
request settings' stored shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omniroute_core import jsonx
from omniroute_core.health import Health, decode_health, health_hash, lockout_key, parse_lockout_key, reset_epoch
from omniroute_core.ratelimits import duration_ms, parse_rate_limits, rate_limit_key
from omniroute_core.request_settings import SystemPrompt, ThinkingBudget
from omniroute_core.snapshot import ProviderConnection

NOW = 1_700_000_000_000


def test_health_records_round_trip_and_old_four_field_records_read() -> None:
    assert decode_health(jsonx.dumps(Health(1, 2, 3, 4).encode())) == Health(1, 2, 3, 4)
    locked = Health(locked_until_ms=99, lock_status=401)
    assert locked.encode() == [0, 0, 0, 0, 99, 401] and Health.decode(locked.encode()) == locked
    assert locked.blocked_until(50) == 99 and locked.blocked_until(99) == 0
    assert decode_health(b"junk") == Health() and decode_health(None) == Health()
    assert Health.decode([1, 2, 3]) == Health()


def test_keys() -> None:
    conn = ProviderConnection("c-1", "openai", "main", "", "v1:cipher-a")
    rotated = ProviderConnection("c-1", "openai", "main", "", "v1:cipher-b")
    key = lockout_key(conn, "org/model:v2")
    assert key.startswith("lock:c-1:") and key != lockout_key(rotated, "org/model:v2")  # a new key ends lockouts
    parsed = parse_lockout_key(key)
    assert parsed is not None and (parsed[0], parsed[2]) == ("c-1", "org/model:v2")
    assert parse_lockout_key("conn:c-1") is None
    assert health_hash("7") == "omniroute:health:7" and rate_limit_key("c-1") == "omniroute:ratelimit:c-1"
    assert reset_epoch({"resilience": {"resetEpoch": 3}}) == "3" and reset_epoch({}) == "0"


@pytest.mark.parametrize(
    ("value", "ms"), [("6m0s", 360_000), ("20ms", 20), ("1.5", 1500), ("1h2m", 3_720_000), ("", 0), ("soon", 0)]
)
def test_durations(value: str, ms: int) -> None:
    assert duration_ms(value) == ms


def test_openai_headers() -> None:
    headers = {
        "X-RateLimit-Limit-Requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29950",
        "x-ratelimit-reset-tokens": "6m0s",
        "content-type": "application/json",
    }
    assert parse_rate_limits(headers.items(), 200, NOW) == {
        "observedAt": NOW,
        "status": 200,
        "windows": {
            "requests": {"limit": 500, "remaining": 499, "resetAt": NOW + 120},
            "tokens": {"limit": 30000, "remaining": 29950, "resetAt": NOW + 360_000},
        },
    }


def test_anthropic_headers_and_retry_after() -> None:
    reset = "2026-01-01T00:00:30Z"
    headers = [
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", reset),
        ("anthropic-ratelimit-input-tokens-remaining", "1000"),
        ("anthropic-ratelimit-output-tokens-limit", "8000"),
        ("retry-after", "12"),
    ]
    record = parse_rate_limits(headers, 429, NOW)
    reset_ms = int(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC).timestamp() * 1000)
    assert record == {
        "observedAt": NOW,
        "status": 429,
        "windows": {
            "requests": {"limit": 50, "remaining": 0, "resetAt": reset_ms},
            "inputTokens": {"limit": None, "remaining": 1000, "resetAt": None},
            "outputTokens": {"limit": 8000, "remaining": None, "resetAt": None},
        },
        "retryAfterMs": 12_000,
    }


@pytest.mark.parametrize(
    ("headers", "reset_at"),
    [
        ({"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": str(NOW + 5000)}, NOW + 5000),
        ({"RateLimit-Limit": "20", "RateLimit-Remaining": "3", "RateLimit-Reset": "5"}, NOW + 5000),
        (
            {"x-ratelimit-limit": "20", "x-ratelimit-remaining": "3", "x-ratelimit-reset": str(NOW // 1000 + 5)},
            NOW + 5000,
        ),
    ],
)
def test_single_window_headers(headers: dict[str, str], reset_at: int) -> None:
    record = parse_rate_limits(headers.items(), 200, NOW)
    assert record is not None and record["windows"] == {"requests": {"limit": 20, "remaining": 3, "resetAt": reset_at}}


def test_nothing_to_record_and_a_bare_429() -> None:
    assert parse_rate_limits([("content-type", "application/json")], 200, NOW) is None
    assert parse_rate_limits([], 429, NOW) == {"observedAt": NOW, "status": 429, "windows": {}}
    dated = parse_rate_limits([("Retry-After", "Wed, 21 Oct 2015 07:28:10 GMT")], 503, 1_445_412_480_000)
    assert dated is not None and dated["retryAfterMs"] == 10_000


def test_request_settings_shapes() -> None:
    assert SystemPrompt.parse(None) == SystemPrompt(True, "", "") and not SystemPrompt().active
    assert SystemPrompt.parse({"prompt": "legacy"}).suffix == "legacy"
    assert SystemPrompt.parse({"prompt": "legacy", "suffixPrompt": "new"}).suffix == "new"
    assert not SystemPrompt.parse({"enabled": False, "prefixPrompt": "p"}).active
    assert ThinkingBudget.parse({"mode": "bogus", "customBudget": -5}) == ThinkingBudget()
    assert ThinkingBudget.parse({"mode": "custom", "customBudget": 0}).budget == 0
    assert ThinkingBudget.parse({"mode": "adaptive", "effortLevel": "low"}).budget == 1024
    assert not ThinkingBudget().active and ThinkingBudget("auto").active
