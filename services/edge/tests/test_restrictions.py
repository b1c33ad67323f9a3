"""Model restrictions: fnmatch patterns against the model string the client sent; blocked wins."""

from __future__ import annotations

import pytest

from omniroute_core.snapshot import ApiKey
from omniroute_edge.restrictions import model_refusal


def key(allowed: tuple[str, ...] = (), blocked: tuple[str, ...] = ()) -> ApiKey:
    return ApiKey("k", "n", "h", allowed_models=allowed, blocked_models=blocked)


@pytest.mark.parametrize(
    ("allowed", "blocked", "model", "ok"),
    [
        ((), (), "anything", True),
        (("openai/*",), (), "openai/gpt-4o", True),
        (("openai/*",), (), "gpt-4o", False),
        (("openai/*",), (), "anthropic/claude", False),
        ((), ("openai/*",), "openai/gpt-4o", False),
        ((), ("openai/*",), "OpenAI/gpt-4o", True),
        (("openai/*",), ("openai/gpt-4o",), "openai/gpt-4o", False),
        (("openai/*",), ("openai/gpt-4o",), "openai/gpt-4o-mini", True),
        (("*mini*", "anthropic/claude-?-haiku"), (), "anthropic/claude-3-haiku", True),
        (("nebius/Qwen/*",), (), "nebius/Qwen/Qwen3-Embedding-8B", True),
    ],
)
def test_patterns(allowed: tuple[str, ...], blocked: tuple[str, ...], model: str, ok: bool) -> None:
    error = model_refusal(key(allowed, blocked), model)
    assert (error is None) == ok
    if error is not None:
        assert error.status == 403
        assert error.type == "permission_error"
        assert model in error.message
