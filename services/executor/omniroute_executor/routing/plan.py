"""Attempt plans: a model string → the ordered targets to try, and the knobs of the retry/fallback loop.

The model string is read by :func:`omniroute_core.resolution.expand` (aliases, combos, ``provider/model``, catalog
inference, combo nesting capped and cycles refused); this module supplies the ordering. A combo's steps are ordered
by the combo's strategy; a provider's active connections by the account strategy (``settings.routing.
accountStrategy``, default ``fill-first``: by connection priority); a step with ``connectionId`` uses that
connection only. Targets appear once (first position wins). Targets that the resilience state blocks (breaker
open, cooling down, locked out) are left out; the earliest time one of them becomes usable again is reported so
that an all-blocked plan can answer 503 with ``Retry-After``.

Knobs come from the snapshot's ``settings.routing`` (defaults for every request), overridden by the asked-for
combo's ``config`` (also when the combo is reached through an alias). The gateway-wide request settings (system
prompt, thinking budget) travel on the plan too, as a per-target :class:`RequestPolicy`. Pure: randomness,
statistics and the blocked check are passed in.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from omniroute.v1 import translator_pb2
from omniroute_core.catalog import Catalog, ProviderSpec
from omniroute_core.request_settings import SYSTEM_PROMPT_KEY, THINKING_BUDGET_KEY, SystemPrompt, ThinkingBudget
from omniroute_core.resolution import Expansion, Group, expand, is_reasoning_model, model_price
from omniroute_core.snapshot import Combo, ConfigSnapshot
from omniroute_executor.resolve import Target
from omniroute_executor.routing.strategies import Candidate, RoutingStats, order

__all__ = ["Plan", "RouteConfig", "build_plan"]

_KNOBS = {  # API name → (field, scale from the API's unit)
    "maxRetries": ("max_retries", 1),
    "retryDelayMs": ("retry_delay_s", 0.001),
    "maxRetryAfterMs": ("max_retry_after_s", 0.001),
    "timeoutMs": ("timeout_s", 0.001),
    "fallbackDelayMs": ("fallback_delay_s", 0.001),
    "maxAttempts": ("max_attempts", 1),
    "stickyLimit": ("sticky_limit", 1),
}


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """Knobs of one request's retry/fallback loop.

    ``max_retries``: extra tries of the same target on a retryable failure (0: go straight to the next target,
    so a single-target request answers as fast as the provider fails). ``max_retry_after_s``: a longer
    ``Retry-After`` is not waited for (the target is left for the next one). ``timeout_s``: per attempt, until
    the response headers (and the whole body when not streaming); 0 leaves only the upstream's own timeouts.
    ``max_attempts`` caps attempts across all targets and retries.
    """

    max_retries: int = 0
    retry_delay_s: float = 0.25
    max_retry_after_s: float = 10.0
    timeout_s: float = 0.0
    fallback_delay_s: float = 0.0
    max_attempts: int = 10
    account_strategy: str = "fill-first"
    sticky_limit: int = 1
    # per provider id: {"accountStrategy", "stickyLimit"} over the two above (settings.routing.providers)
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def merged(self, raw: Mapping[str, Any]) -> RouteConfig:
        """This config with the API-named knobs of ``raw`` applied; malformed values are ignored."""
        changes: dict[str, Any] = {}
        for name, (attr, scale) in _KNOBS.items():
            value = raw.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                changes[attr] = int(value) if scale == 1 else value * scale
        strategy = raw.get("accountStrategy")
        if isinstance(strategy, str):
            changes["account_strategy"] = strategy
        providers = raw.get("providers")
        if isinstance(providers, Mapping):
            changes["providers"] = {
                str(pid): _account_override(o) for pid, o in providers.items() if isinstance(o, Mapping)
            }
        return replace(self, **changes)


def _account_override(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(raw.get("accountStrategy"), str):
        out["accountStrategy"] = raw["accountStrategy"]
    sticky = raw.get("stickyLimit")
    if isinstance(sticky, int) and not isinstance(sticky, bool) and sticky >= 1:
        out["stickyLimit"] = sticky
    return out


@dataclass(frozen=True, slots=True)
class Plan:
    targets: tuple[Target, ...]
    config: RouteConfig
    combo: str  # the combo asked for ("" for provider/model)
    blocked_until_ms: int = 0  # earliest end of a block among left-out targets (0: none left out)
    system_prompt: SystemPrompt = field(default_factory=SystemPrompt)
    thinking: ThinkingBudget = field(default_factory=ThinkingBudget)
    reasoning: frozenset[str] = field(default_factory=frozenset)  # keys of targets whose model is known to reason

    def policy_for(self, target: Target) -> translator_pb2.RequestPolicy | None:
        """The request settings to apply for ``target``; None when none is active (the request goes as sent)."""
        prompt = self.system_prompt
        if not prompt.active and not self.thinking.active:
            return None
        return translator_pb2.RequestPolicy(
            system_prefix=prompt.prefix if prompt.active else "",
            system_suffix=prompt.suffix if prompt.active else "",
            thinking_mode=self.thinking.mode if self.thinking.active else "",
            thinking_budget=self.thinking.budget,
            model_reasons=target.key in self.reasoning,
        )


def build_plan(
    model: str,
    catalog: Catalog,
    snapshot: ConfigSnapshot,
    *,
    stats: RoutingStats,
    rng: random.Random,
    blocked_until: Callable[[Target], int],
) -> Plan:
    """The attempt plan of ``model``. Raises :class:`~omniroute_core.resolution.ResolveError` when it names
    nothing servable.

    ``blocked_until(target)`` returns 0 for a usable target, else the wall-clock ms when it may be used again.
    """
    settings = snapshot.derived("plan.settings", lambda: _Settings.of(snapshot))
    fixed = snapshot.derived("plan.fixed", _FixedExpansions)
    expansion = fixed.get(model)
    if expansion is None:
        ordering = _Ordering(snapshot, stats, rng, settings.config)
        expansion = expand(model, catalog, snapshot, order_steps=ordering.steps, order_targets=ordering.connections)
        if not ordering.chose:
            fixed.put(model, expansion)
    combo = expansion.named.combo
    config = settings.config
    if combo is not None:
        config = snapshot.derived(("plan.combo", combo.name), lambda: settings.config.merged(combo.config))
    usable: list[Target] = []
    seen: set[str] = set()
    earliest = 0
    for target in expansion.targets:
        if target.key in seen:
            continue
        seen.add(target.key)
        until = blocked_until(target)
        if until:
            earliest = until if not earliest else min(earliest, until)
        else:
            usable.append(target)
    thinking = settings.thinking
    reasoning = (
        frozenset(t.key for t in usable if is_reasoning_model(t.provider, t.model, snapshot))
        if thinking.active
        else frozenset()
    )
    return Plan(
        tuple(usable), config, combo.name if combo else "", earliest, settings.system_prompt, thinking, reasoning
    )


@dataclass(frozen=True, slots=True)
class _Settings:
    """What a plan takes from the snapshot's settings, parsed once per snapshot."""

    config: RouteConfig
    system_prompt: SystemPrompt
    thinking: ThinkingBudget

    @classmethod
    def of(cls, snapshot: ConfigSnapshot) -> _Settings:
        routing = snapshot.settings.get("routing")
        return cls(
            RouteConfig().merged(routing if isinstance(routing, Mapping) else {}),
            SystemPrompt.parse(snapshot.settings.get(SYSTEM_PROMPT_KEY)),
            ThinkingBudget.parse(snapshot.settings.get(THINKING_BUDGET_KEY)),
        )


class _FixedExpansions:
    """Per snapshot, the expansions of model strings whose targets came out in the only possible order (every
    combo and provider on the way had at most one candidate, so no strategy, statistic or random draw took part):
    for those the expansion is a function of the snapshot and the string, and requests reuse it (most traffic
    names one provider account or a one-step alias). Bounded, least recently used first out: clients choose the
    strings."""

    __slots__ = ("_entries",)
    LIMIT = 1024

    def __init__(self) -> None:
        self._entries: OrderedDict[str, Expansion] = OrderedDict()

    def get(self, model: str) -> Expansion | None:
        found = self._entries.get(model)
        if found is not None:
            self._entries.move_to_end(model)
        return found

    def put(self, model: str, expansion: Expansion) -> None:
        self._entries[model] = expansion
        if len(self._entries) > self.LIMIT:
            self._entries.popitem(last=False)


@dataclass(slots=True)
class _Ordering:
    """The strategies, as the ordering callbacks of :func:`omniroute_core.resolution.expand`. ``chose``: some
    combo or provider had more than one candidate, so the order may differ from one request to the next."""

    snapshot: ConfigSnapshot
    stats: RoutingStats
    rng: random.Random
    config: RouteConfig
    chose: bool = False

    def steps(self, combo: Combo, groups: list[Group]) -> list[Group]:
        if len(groups) > 1:
            self.chose = True

        def candidate(group: Group) -> Candidate:
            step, targets = group
            head = targets[0]
            return Candidate(head.key, step.weight, model_price(head.provider, head.model, self.snapshot))

        return order(combo.strategy, groups, candidate, stats=self.stats, rng=self.rng, group=f"combo:{combo.name}")

    def connections(self, spec: ProviderSpec, targets: list[Target]) -> list[Target]:
        if len(targets) > 1:
            self.chose = True
        strategy, sticky = self.config.account_strategy, self.config.sticky_limit
        override = self.config.providers.get(spec.id)
        if override is not None:
            strategy = override.get("accountStrategy", strategy)
            sticky = override.get("stickyLimit", sticky)
        return order(
            strategy,
            targets,
            lambda t: Candidate(t.key, 1, None),
            stats=self.stats,
            rng=self.rng,
            group=f"provider:{spec.id}",
            sticky=sticky,
        )
