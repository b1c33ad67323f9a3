"""Which models a key may call: fnmatch patterns from the key's ``allowedModels`` / ``blockedModels``.

Patterns are matched against the model string exactly as the client sent it (``openai/*`` matches
``openai/gpt-4o``, not a bare ``gpt-4o`` that an alias happens to route to OpenAI): the edge decides before the
executor resolves anything, so a refused request never reaches a provider. Matching is case-sensitive
(``fnmatchcase``) so the answer does not depend on the operating system.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from omniroute.v1 import common_pb2
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import ApiKey

__all__ = ["model_refusal"]


def model_refusal(key: ApiKey, model: str) -> common_pb2.Error | None:
    """A 403 ``permission_error`` when ``key`` may not call ``model``, else None.

    A blocked match always wins; a non-empty allowed list must match too.
    """
    # most keys have neither list: test for that before building a generator per request
    if key.blocked_models and any(fnmatchcase(model, pattern) for pattern in key.blocked_models):
        return hub_error(403, f"this API key may not use model {model!r} (blocked)", code="model_not_allowed")
    if key.allowed_models and not any(fnmatchcase(model, pattern) for pattern in key.allowed_models):
        return hub_error(403, f"this API key may not use model {model!r} (not allowed)", code="model_not_allowed")
    return None
