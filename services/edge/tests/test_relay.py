"""The relay's request parsing: the only fields the edge reads, and refusals in the hub's vocabulary."""

from __future__ import annotations

import pytest

from omniroute.v1 import common_pb2
from omniroute_edge.bodies import BodyError
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
