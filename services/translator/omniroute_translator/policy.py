"""Gateway-wide request settings applied to a hub request (``TranslateRequestIn.policy``).

Applied between decoding the client's body and encoding the provider's, so each setting is written once, in hub
terms, and every codec renders it in its own format (Anthropic ``system`` and ``thinking.budget_tokens``, Gemini
``systemInstruction`` and ``thinkingConfig.thinkingBudget``, OpenAI a system message and ``reasoning_effort``, ...).
Pure: the hub dict is changed in place and nothing else is touched.

- System prompt: ``system_prefix`` is put before the first system (or developer) message's content,
  ``system_suffix`` after the last one's; a request without one gets a system message holding both, first.
- Thinking: ``auto`` removes ``thinking`` and ``reasoning_effort``. ``custom`` / ``adaptive`` set
  ``thinking: {type: enabled, budget_tokens}`` (or ``{type: disabled}`` for a budget of 0) and drop
  ``reasoning_effort``, on requests that ask for reasoning and, when ``model_reasons``, on those that do not ask;
  a request that turned reasoning off itself keeps it off. ``adaptive`` scales the budget by the request's size.
"""

from __future__ import annotations

import math
from typing import Any

from omniroute.v1 import translator_pb2
from omniroute_core import jsonx
from omniroute_core.request_settings import MAX_THINKING_BUDGET
from omniroute_translator.codecs.base import HubRequest

__all__ = ["apply_policy", "policy_active"]

_SYSTEM_ROLES = ("system", "developer")


def policy_active(policy: translator_pb2.RequestPolicy) -> bool:
    return bool(policy.system_prefix or policy.system_suffix) or policy.thinking_mode not in ("", "passthrough")


def apply_policy(hub: HubRequest, policy: translator_pb2.RequestPolicy) -> bool:
    """Apply ``policy`` to ``hub`` in place; True when the request changed."""
    changed = _system(hub, policy.system_prefix, policy.system_suffix)
    return _thinking(hub, policy) or changed


def _system(hub: HubRequest, prefix: str, suffix: str) -> bool:
    messages = hub.get("messages")
    if not (prefix or suffix) or not isinstance(messages, list):
        return False
    found = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES]
    if not found:
        messages.insert(0, {"role": "system", "content": "\n\n".join(p for p in (prefix, suffix) if p)})
        return True
    if prefix:
        messages[found[0]] = _with_text(messages[found[0]], prefix, first=True)
    if suffix:
        messages[found[-1]] = _with_text(messages[found[-1]], suffix, first=False)
    return True


def _with_text(message: dict[str, Any], text: str, *, first: bool) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list):
        part = {"type": "text", "text": text}
        content = [part, *content] if first else [*content, part]
    elif isinstance(content, str) and content:
        content = f"{text}\n\n{content}" if first else f"{content}\n\n{text}"
    else:
        content = text
    return {**message, "content": content}


def _thinking(hub: HubRequest, policy: translator_pb2.RequestPolicy) -> bool:
    mode = policy.thinking_mode
    if mode in ("", "passthrough"):
        return False
    if mode == "auto":
        removed = [hub.pop(name, None) for name in ("thinking", "reasoning_effort")]
        return any(value is not None for value in removed)
    thinking = hub.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    asks = kind == "enabled" or isinstance(hub.get("reasoning_effort"), str)
    if not asks and (kind == "disabled" or not policy.model_reasons):
        return False
    budget = _adaptive(hub, policy.thinking_budget) if mode == "adaptive" else policy.thinking_budget
    hub.pop("reasoning_effort", None)
    hub["thinking"] = {"type": "enabled", "budget_tokens": budget} if budget > 0 else {"type": "disabled"}
    return True


def _adaptive(hub: HubRequest, base: int) -> int:
    """``base`` scaled up for long conversations (>10 messages), many tools (>3) and a long last user message."""
    messages = hub.get("messages")
    messages = messages if isinstance(messages, list) else []
    tools = hub.get("tools")
    factor = 1.0
    if len(messages) > 10:
        factor += 0.5
    if isinstance(tools, list) and len(tools) > 3:
        factor += 0.5
    last_user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    if last_user is not None and _text_length(last_user.get("content")) > 2000:
        factor += 0.3
    return min(MAX_THINKING_BUDGET, math.ceil(base * factor))


def _text_length(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return len(jsonx.dumps(content)) if content is not None else 0
