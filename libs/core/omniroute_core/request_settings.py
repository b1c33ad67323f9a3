"""Gateway-wide request settings: the global system prompt and the thinking budget.

The dashboard stores them in the ``settings`` table (rows ``systemPrompt`` and ``thinkingBudget``, the API's JSON
shape), so they reach every executor in the config snapshot; the executor hands them to the translator, which
applies them to the hub request between decoding and encoding, in whatever format the provider speaks. Both
services read the shape from here.

**System prompt** ``{"enabled", "prefixPrompt", "suffixPrompt"}`` (OmniRoute's shape): ``prefixPrompt`` goes
before the request's own system instructions, ``suffixPrompt`` after them (the last word, which models weigh
most); a request without system instructions gets one system message with both. The legacy single ``prompt``
field is read as ``suffixPrompt``, as OmniRoute migrates it.

**Thinking budget** ``{"mode", "customBudget", "effortLevel"}`` (OmniRoute's modes):

- ``passthrough`` (default): requests are left as they are;
- ``auto``: every reasoning setting of the request is removed, so the provider decides;
- ``custom``: ``customBudget`` reasoning tokens (0 turns reasoning off) for every request that asks for reasoning,
  and for requests to models known to reason (catalog ``reasoningModels``, custom models flagged ``reasoning``);
- ``adaptive``: like ``custom`` with the budget of ``effortLevel`` scaled by the request's size (more messages,
  more tools, a long last user message raise it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EFFORT_BUDGETS",
    "MAX_THINKING_BUDGET",
    "SYSTEM_PROMPT_KEY",
    "THINKING_BUDGET_KEY",
    "THINKING_MODES",
    "SystemPrompt",
    "ThinkingBudget",
]

SYSTEM_PROMPT_KEY = "systemPrompt"
THINKING_BUDGET_KEY = "thinkingBudget"
THINKING_MODES = ("passthrough", "auto", "custom", "adaptive")
# reasoning tokens per effort level (the adaptive mode's base budget)
EFFORT_BUDGETS: Mapping[str, int] = {"none": 0, "low": 1024, "medium": 10240, "high": 24576}
MAX_THINKING_BUDGET = 131_072


@dataclass(frozen=True, slots=True)
class SystemPrompt:
    enabled: bool = True
    prefix: str = ""
    suffix: str = ""

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.prefix or self.suffix)

    def to_api(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "prefixPrompt": self.prefix, "suffixPrompt": self.suffix}

    @classmethod
    def parse(cls, raw: Any) -> SystemPrompt:
        """From the stored shape; missing or malformed fields take their defaults."""
        if not isinstance(raw, Mapping):
            return cls()
        suffix = raw.get("suffixPrompt")
        if not isinstance(suffix, str):
            legacy = raw.get("prompt")
            suffix = legacy if isinstance(legacy, str) else ""
        prefix = raw.get("prefixPrompt")
        enabled = raw.get("enabled")
        return cls(
            enabled=enabled if isinstance(enabled, bool) else True,
            prefix=prefix if isinstance(prefix, str) else "",
            suffix=suffix,
        )


@dataclass(frozen=True, slots=True)
class ThinkingBudget:
    mode: str = "passthrough"
    custom_budget: int = 10240
    effort_level: str = "medium"

    @property
    def active(self) -> bool:
        return self.mode in ("auto", "custom", "adaptive")

    @property
    def budget(self) -> int:
        """The budget ``custom`` applies, or the base budget ``adaptive`` scales."""
        if self.mode == "adaptive":
            return EFFORT_BUDGETS.get(self.effort_level, EFFORT_BUDGETS["medium"])
        return self.custom_budget

    def to_api(self) -> dict[str, Any]:
        return {"mode": self.mode, "customBudget": self.custom_budget, "effortLevel": self.effort_level}

    @classmethod
    def parse(cls, raw: Any) -> ThinkingBudget:
        """From the stored shape; missing or malformed fields take their defaults."""
        if not isinstance(raw, Mapping):
            return cls()
        mode, budget, effort = raw.get("mode"), raw.get("customBudget"), raw.get("effortLevel")
        return cls(
            mode=mode if isinstance(mode, str) and mode in THINKING_MODES else "passthrough",
            custom_budget=(
                budget
                if isinstance(budget, int) and not isinstance(budget, bool) and 0 <= budget <= MAX_THINKING_BUDGET
                else 10240
            ),
            effort_level=effort if isinstance(effort, str) and effort in EFFORT_BUDGETS else "medium",
        )
