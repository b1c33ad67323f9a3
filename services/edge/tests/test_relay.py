"""The relay's request parsing (the only fields the edge reads, and refusals in the hub's vocabulary), its request
ids and its metrics."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry

from omniroute.v1 import common_pb2
from omniroute_edge.bodies import BodyError
from omniroute_edge.metrics import EdgeMetrics, new_request_id
from omniroute_edge.routes import ROUTES, Route

from .test_bodies import target as _target

CHAT = common_pb2.OPERATION_CHAT
BY_PATH = {r.path: r for r in ROUTES}
OPENAI = BY_PATH["/v1/chat/completions"]


def _model_and_stream(body: bytes, route: Route = OPENAI, target: str = "") -> tuple[str, bool]:
    _, model, stream, _ = _target(route, body, {"target": target} if target else {})
    return model, stream


def test_model_and_stream_are_read_from_the_body() -> None:
    assert _model_and_stream(b'{"model": "openai/gpt-4o", "stream": true}') == ("openai/gpt-4o", True)
    assert _model_and_stream(b'{"model": "m"}') == ("m", False)


def test_ollama_streams_unless_told_not_to() -> None:
    ollama = BY_PATH["/v1/api/chat"]
    assert _model_and_stream(b'{"model": "m"}', ollama) == ("m", True)
    assert _model_and_stream(b'{"model": "m", "stream": false}', ollama) == ("m", False)


def test_gemini_takes_model_and_stream_from_the_path() -> None:
    gemini = BY_PATH["/v1beta/models/{target:path}"]
    assert _target(gemini, b"{}", {"target": "gemini/gemini-2.5-flash:generateContent"})[1:] == (
        "gemini/gemini-2.5-flash",
        False,
        CHAT,
    )
    assert _model_and_stream(b"{}", gemini, "models/gemini-2.5-pro:streamGenerateContent") == ("gemini-2.5-pro", True)


@pytest.mark.parametrize("target", ["gemini-2.5-pro:embedContent", "gemini-2.5-pro", ":generateContent"])
def test_gemini_unknown_method_is_404(target: str) -> None:
    with pytest.raises(BodyError) as exc:
        _model_and_stream(b"{}", BY_PATH["/v1beta/models/{target:path}"], target)
    assert exc.value.error.status == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{", ""),
        (b"[]", ""),
        (b'{"messages": []}', "model"),
        (b'{"model": 3}', "model"),
        (b'{"model": ""}', "model"),
        (b'{"model": "m", "stream": "yes"}', "stream"),
    ],
)
def test_bad_bodies_are_400(body: bytes, param: str) -> None:
    with pytest.raises(BodyError) as exc:
        _model_and_stream(body)
    assert exc.value.error.status == 400
    assert exc.value.error.param == param


def test_cache_policy_precedence_key_then_setting_then_default() -> None:
    from omniroute_core.snapshot import ApiKey, ConfigSnapshot
    from omniroute_edge.replay import cache_policy

    plain, never = ApiKey("a", "a", "h1"), ApiKey("b", "b", "h2", cache_policy="never")
    bare = ConfigSnapshot.build(1, (), (plain, never), {})
    assert cache_policy(plain, bare) == ""  # the edge's own default applies
    assert cache_policy(None, bare) == ""
    assert cache_policy(never, bare) == "never"
    always = ConfigSnapshot.build(2, (), (plain, never), {"cache": {"policy": "always"}})
    assert cache_policy(plain, always) == "always"
    assert cache_policy(None, always) == "always"
    assert cache_policy(never, always) == "never"
    odd = ConfigSnapshot.build(3, (), (plain,), {"cache": {"policy": "sometimes"}})
    assert cache_policy(plain, odd) == ""
    assert cache_policy(plain, ConfigSnapshot.build(4, (), (plain,), {"cache": "always"})) == ""


def test_a_generated_request_id_is_a_random_uuid4_in_hex() -> None:
    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for rid in ids:
        parsed = uuid.UUID(rid)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, rid)


def test_request_metrics_are_recorded_per_route_and_status() -> None:
    registry = CollectorRegistry()
    metrics = EdgeMetrics(registry)
    for status in (200, 200, 429):
        metrics.finished("/v1/chat/completions", status, 0.002)
    metrics.observe_overhead("/v1/chat/completions", True, 0.010, 4_000)
    metrics.observe_first_byte("/v1/chat/completions", 0.003)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    route = {"route": "/v1/chat/completions"}
    assert value("omniroute_edge_requests_total", status="200", **route) == 2
    assert value("omniroute_edge_requests_total", status="429", **route) == 1
    assert value("omniroute_edge_request_duration_seconds_count", **route) == 3
    assert value("omniroute_gateway_overhead_seconds_sum", stream="true", **route) == pytest.approx(0.006)
    assert value("omniroute_gateway_first_byte_overhead_seconds_count", **route) == 1
