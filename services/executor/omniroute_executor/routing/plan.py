"""Attempt plans: a model string → the ordered targets to try, and the knobs of the retry/fallback loop.

A combo name expands into its steps ordered by the combo's strategy; a step naming another combo expands in place
(nesting capped at ``MAX_COMBO_DEPTH``, cycles refused even if the dashboard let one through). ``provider/model``
(or a bare name the catalog infers) expands into the provider's active connections ordered by the account strategy
(``settings.routing.accountStrategy``, default ``fill-first``: by connection priority); a step with
``connectionId`` uses that connection only. Targets appear once (first position wins). Targets that the
resilience state blocks (breaker open, cooling down) are left out; the earliest time one of them becomes usable
again is reported so that an all-blocked plan can answer 503 with ``Retry-After``.

Knobs come from the snapshot's ``settings.routing`` (defaults for every request), overridden by the asked-for
combo's ``config``. Pure: randomness, statistics and the blocked check are passed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from omniroute_core.catalog import Catalog
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import MAX_COMBO_DEPTH, ComboStep, ConfigSnapshot
from omniroute_executor.resolve import ResolveError, Target, active_connections, resolve_model
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
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Plan:
    targets: tuple[Target, ...]
    config: RouteConfig
    combo: str  # the combo asked for ("" for provider/model)
    blocked_until_ms: int = 0  # earliest end of a block among left-out targets (0: none left out)


def build_plan(
    model: str,
    catalog: Catalog,
    snapshot: ConfigSnapshot,
    *,
    stats: RoutingStats,
    rng: random.Random,
    blocked_until: Callable[[Target], int],
) -> Plan:
    """The attempt plan of ``model``. Raises :class:`ResolveError` when it names nothing servable.

    ``blocked_until(target)`` returns 0 for a usable target, else the wall-clock ms when it may be used again.
    """
    routing = snapshot.settings.get("routing")
    config = RouteConfig().merged(routing if isinstance(routing, Mapping) else {})
    combo = snapshot.combos_by_name.get(model)
    if combo is not None:
        config = config.merged(combo.config)
    expander = _Expander(catalog, snapshot, stats, rng, config)
    targets = expander.expand(model, "", ())
    usable: list[Target] = []
    seen: set[str] = set()
    earliest = 0
    for target in targets:
        if target.key in seen:
            continue
        seen.add(target.key)
        until = blocked_until(target)
        if until:
            earliest = until if not earliest else min(earliest, until)
        else:
            usable.append(target)
    return Plan(tuple(usable), config, combo.name if combo else "", earliest)


@dataclass(slots=True)
class _Expander:
    catalog: Catalog
    snapshot: ConfigSnapshot
    stats: RoutingStats
    rng: random.Random
    config: RouteConfig

    def expand(self, model: str, connection_id: str, path: tuple[str, ...]) -> list[Target]:
        combo = self.snapshot.combos_by_name.get(model)
        if combo is None:
            return self._direct(model, connection_id)
        if model in path or len(path) >= MAX_COMBO_DEPTH:
            raise ResolveError(
                hub_error(400, f"combo {model!r} nests too deep or in a cycle: {' -> '.join((*path, model))}")
            )
        groups: list[tuple[ComboStep, list[Target]]] = []
        first_error: ResolveError | None = None
        for step in combo.steps:
            try:
                groups.append((step, self.expand(step.model, step.connection_id, (*path, model))))
            except ResolveError as exc:
                # one unusable step (provider without a connection, typo) must not take the combo down
                first_error = first_error or exc
        if not groups:
            assert first_error is not None
            raise first_error

        def candidate(group: tuple[ComboStep, list[Target]]) -> Candidate:
            step, targets = group
            head = targets[0]
            return Candidate(head.key, step.weight, head.provider.price(head.model))

        ordered = order(combo.strategy, groups, candidate, stats=self.stats, rng=self.rng, group=f"combo:{model}")
        return [target for _, targets in ordered for target in targets]

    def _direct(self, model: str, connection_id: str) -> list[Target]:
        spec, upstream_model = resolve_model(model, self.catalog)
        conns = active_connections(spec, self.snapshot)
        if connection_id:
            conns = tuple(c for c in conns if c.id == connection_id)
            if not conns:
                raise ResolveError(
                    hub_error(400, f"connection {connection_id!r} of {spec.id!r} is not active", code="no_connection")
                )
        targets = [Target(spec, conn, upstream_model) for conn in conns]
        return order(
            self.config.account_strategy,
            targets,
            lambda t: Candidate(t.key, 1, None),
            stats=self.stats,
            rng=self.rng,
            group=f"provider:{spec.id}",
            sticky=self.config.sticky_limit,
        )
