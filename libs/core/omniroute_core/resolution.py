"""Model strings → what they name → the targets a request may be sent to (DESIGN.md "Model strings").

Shared by the executor (which routes requests with it) and the dashboard (which validates aliases and answers
``POST /api/models/availability`` "as a request would be resolved"), so both read a model string the same way.

Order, for a model string ``s``:

1. ``prefix/model``: when the part before the first ``/`` is a provider id or alias of the catalog, or a provider
   node's prefix, that provider serves ``model`` (``nebius/Qwen/Qwen3-Embedding-8B`` → ``Qwen/Qwen3-Embedding-8B``).
2. Otherwise ``s`` is a bare name (it may still contain ``/``, like ``meta-llama/Llama-3``): an **alias** is
   followed to its target (which is resolved again from step 1; chains are allowed, cycles refused), then a
   **combo** of that name, then **catalog inference**: the one provider whose catalog entry or custom models list
   ``s``. Several candidates are a 400 listing them; none is a 404.

:func:`expand` turns a model string into the ordered list of targets (provider, connection, upstream model): a
combo's steps are expanded in place (nesting capped, cycles refused), a provider into its active connections.
Ordering is injected (the executor's strategies; identity for a report), so this module stays pure. A combo step
that cannot be served (no connection, a typo) is recorded in ``skipped`` instead of failing the whole combo.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from omniroute.v1 import common_pb2
from omniroute_core.catalog import Catalog, ProviderSpec
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import MAX_COMBO_DEPTH, Combo, ComboStep, ConfigSnapshot, ProviderConnection

__all__ = [
    "MAX_ALIAS_DEPTH",
    "Expansion",
    "Group",
    "Named",
    "ResolveError",
    "Skipped",
    "Target",
    "active_connections",
    "builtin_connection",
    "expand",
    "is_reasoning_model",
    "model_price",
    "name_model",
    "provider_by_id",
    "provider_for_prefix",
    "providers_of_model",
    "reference_cycle",
]

# How many aliases may chain (a → b → c is 2); the dashboard refuses cycles, this also stops a bad snapshot.
MAX_ALIAS_DEPTH = 8


class ResolveError(Exception):
    """The model string cannot be served; ``error`` says why, in hub vocabulary (400, 404)."""

    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, slots=True)
class Target:
    """One thing an attempt can be sent to: a provider account and the upstream model name.

    ``secret_headers`` is the encrypted custom-header object of a provider node (AES-GCM, aad = the provider id;
    ``""`` for catalog providers): the executor decrypts it when it builds the request."""

    provider: ProviderSpec
    connection: ProviderConnection
    model: str
    secret_headers: str = ""

    @property
    def base_url(self) -> str:
        return (self.connection.base_url or self.provider.base_url).rstrip("/")

    @property
    def key(self) -> str:
        """Identity for routing statistics (latency, use counts)."""
        return f"{self.connection.id}|{self.model}"


def provider_for_prefix(prefix: str, catalog: Catalog, snapshot: ConfigSnapshot) -> ProviderSpec | None:
    """The provider a ``prefix/`` names: a catalog id or alias (case-insensitive), else a node's prefix."""
    return catalog.lookup(prefix) or snapshot.nodes_by_prefix.get(prefix.lower())


def provider_by_id(provider_id: str, catalog: Catalog, snapshot: ConfigSnapshot) -> ProviderSpec | None:
    """A catalog provider or a provider node by its id (what connections name in ``provider``)."""
    return catalog.providers.get(provider_id) or snapshot.node_specs.get(provider_id)


def providers_of_model(model: str, catalog: Catalog, snapshot: ConfigSnapshot) -> list[ProviderSpec]:
    """Catalog inference for a bare name: every provider whose catalog entry or custom models list it."""
    found = {p.id: p for p in catalog.providers_of_model(model)}
    for custom in snapshot.custom_models_by_name.get(model, ()):
        spec = provider_by_id(custom.provider, catalog, snapshot)
        if spec is not None:
            found.setdefault(spec.id, spec)
    return list(found.values())


def model_price(spec: ProviderSpec, model: str, snapshot: ConfigSnapshot) -> float | None:
    """Input plus output USD per million tokens: a custom model's prices win over the catalog's."""
    custom = snapshot.custom_models_by_key.get((spec.id, model))
    price = custom.price() if custom is not None else None
    return price if price is not None else spec.price(model)


def is_reasoning_model(spec: ProviderSpec, model: str, snapshot: ConfigSnapshot) -> bool:
    """Whether ``model`` is known to accept a reasoning budget (catalog data or a custom model's flag)."""
    custom = snapshot.custom_models_by_key.get((spec.id, model))
    return model in spec.reasoning_models or (custom is not None and custom.reasoning)


@dataclass(frozen=True, slots=True)
class Named:
    """What a model string names: a combo, or a provider and its upstream model; ``aliases`` were followed."""

    aliases: tuple[str, ...] = ()
    combo: Combo | None = None
    provider: ProviderSpec | None = None
    model: str = ""


def name_model(model: str, catalog: Catalog, snapshot: ConfigSnapshot) -> Named:
    """Resolve ``model`` by name (no connection is looked at). Raises :class:`ResolveError` (400 or 404)."""
    if not model:
        raise ResolveError(hub_error(400, "'model' is required", param="model", code="model_required"))
    chain: list[str] = []
    current = model
    while True:
        prefix, sep, rest = current.partition("/")
        spec = provider_for_prefix(prefix, catalog, snapshot) if sep else None
        if spec is not None:
            if not rest:
                raise ResolveError(
                    hub_error(400, f"model string {current!r} names no model after the provider prefix", param="model")
                )
            return Named(tuple(chain), provider=spec, model=rest)
        target = snapshot.aliases.get(current)
        if target is not None:
            if current in chain or len(chain) >= MAX_ALIAS_DEPTH:
                path = " -> ".join((*chain, current))
                raise ResolveError(hub_error(400, f"model aliases form a cycle: {path}", code="alias_cycle"))
            chain.append(current)
            current = target
            continue
        combo = snapshot.combos_by_name.get(current)
        if combo is not None:
            return Named(tuple(chain), combo=combo)
        spec = _infer(model, current, chain, prefix if sep else "", catalog, snapshot)
        return Named(tuple(chain), provider=spec, model=current)


def _infer(
    asked: str, name: str, chain: Sequence[str], prefix: str, catalog: Catalog, snapshot: ConfigSnapshot
) -> ProviderSpec:
    via = f" (alias {asked!r} -> {name!r})" if chain else ""
    candidates = providers_of_model(name, catalog, snapshot)
    if len(candidates) > 1:
        names = ", ".join(f"{p.id}/{name}" for p in sorted(candidates, key=lambda p: p.id))
        raise ResolveError(
            hub_error(
                400,
                f"model {name!r}{via} is ambiguous; use one of: {names}",
                param="model",
                code="model_ambiguous",
            )
        )
    if not candidates:
        hint = f"unknown provider {prefix!r}" if prefix else "no provider, alias or combo has that name"
        raise ResolveError(
            hub_error(
                404,
                f"model {name!r}{via} not found ({hint}); use 'provider/model', e.g. 'openai/gpt-4o'",
                type_="invalid_request_error",
                param="model",
                code="model_not_found",
            )
        )
    return candidates[0]


def reference_cycle(start: str, catalog: Catalog, snapshot: ConfigSnapshot) -> tuple[str, ...] | None:
    """A chain of names from ``start`` back to a name already on it, following aliases to their targets and combos
    to their steps (``("a", "b", "a")``); None when there is no cycle. For validating a change before it is saved."""

    def references(name: str) -> list[str]:
        prefix, sep, _ = name.partition("/")
        if sep and provider_for_prefix(prefix, catalog, snapshot) is not None:
            return []
        if name in snapshot.aliases:
            return [snapshot.aliases[name]]
        combo = snapshot.combos_by_name.get(name)
        return [step.model for step in combo.steps] if combo is not None else []

    def walk(name: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if name in path:
            return (*path, name)
        for child in references(name):
            found = walk(child, (*path, name))
            if found is not None:
                return found
        return None

    return walk(start, ())


def builtin_connection(spec: ProviderSpec) -> ProviderConnection:
    """The one implicit connection of a built-in provider (no account, no key)."""
    return ProviderConnection(id=f"builtin:{spec.id}", provider=spec.id, name="built-in", base_url="", api_key_enc="")


def active_connections(spec: ProviderSpec, snapshot: ConfigSnapshot) -> tuple[ProviderConnection, ...]:
    """The provider's active connections in priority order (a built-in provider's implicit one when it has none
    configured). Raises :class:`ResolveError` (400) when none. Kept with the snapshot once found."""
    conns = snapshot.derived(("resolution.active", spec.id, spec.builtin), lambda: _active(spec, snapshot))
    if not conns:
        node = snapshot.nodes_by_id.get(spec.id)
        what = f"provider node {node.prefix!r} ({spec.id})" if node is not None else f"provider {spec.id!r}"
        raise ResolveError(
            hub_error(
                400,
                f"no active connection for {what}; add one with POST /api/providers",
                code="provider_not_configured",
            )
        )
    return conns


def _active(spec: ProviderSpec, snapshot: ConfigSnapshot) -> tuple[ProviderConnection, ...]:
    conns = tuple(c for c in snapshot.connections_by_provider.get(spec.id, ()) if c.is_active)
    return (builtin_connection(spec),) if not conns and spec.builtin else conns


@dataclass(frozen=True, slots=True)
class Skipped:
    """A combo step that produced no target, and why (``path``: the combos it is nested in, outermost first)."""

    step: str
    path: tuple[str, ...]
    error: common_pb2.Error


@dataclass(slots=True)
class Expansion:
    named: Named
    targets: list[Target] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


Group = tuple[ComboStep, list[Target]]
OrderSteps = Callable[[Combo, list[Group]], list[Group]]
OrderTargets = Callable[[ProviderSpec, list[Target]], list[Target]]


def expand(
    model: str,
    catalog: Catalog,
    snapshot: ConfigSnapshot,
    *,
    order_steps: OrderSteps | None = None,
    order_targets: OrderTargets | None = None,
) -> Expansion:
    """Every target of ``model`` in trial order (duplicates kept; the caller dedupes by :attr:`Target.key`).

    ``order_steps`` orders a combo's expanded steps, ``order_targets`` a provider's connections (default: as
    configured, i.e. step order and connection priority). Raises :class:`ResolveError` when ``model`` names
    nothing, a provider without an active connection, or a combo none of whose steps can be served.
    """
    named = name_model(model, catalog, snapshot)
    expander = _Expander(catalog, snapshot, order_steps, order_targets)
    result = Expansion(named)
    result.targets = expander.named(named, "", (), result.skipped)
    return result


@dataclass(slots=True)
class _Expander:
    catalog: Catalog
    snapshot: ConfigSnapshot
    order_steps: OrderSteps | None
    order_targets: OrderTargets | None

    def named(self, named: Named, connection_id: str, path: tuple[str, ...], skipped: list[Skipped]) -> list[Target]:
        if named.combo is not None:
            return self._combo(named.combo, path, skipped)
        assert named.provider is not None
        return self._direct(named.provider, named.model, connection_id)

    def _combo(self, combo: Combo, path: tuple[str, ...], skipped: list[Skipped]) -> list[Target]:
        if combo.name in path or len(path) >= MAX_COMBO_DEPTH:
            raise ResolveError(
                hub_error(400, f"combo {combo.name!r} nests too deep or in a cycle: {' -> '.join((*path, combo.name))}")
            )
        inner = (*path, combo.name)
        groups: list[Group] = []
        first_error: ResolveError | None = None
        for step in combo.steps:
            try:
                named = name_model(step.model, self.catalog, self.snapshot)
                groups.append((step, self.named(named, step.connection_id, inner, skipped)))
            except ResolveError as exc:
                # one unusable step (provider without a connection, typo) must not take the combo down
                first_error = first_error or exc
                skipped.append(Skipped(step.model, inner, exc.error))
        if not groups:
            assert first_error is not None
            raise first_error
        ordered = self.order_steps(combo, groups) if self.order_steps else groups
        return [target for _, targets in ordered for target in targets]

    def _direct(self, spec: ProviderSpec, model: str, connection_id: str) -> list[Target]:
        conns = active_connections(spec, self.snapshot)
        if connection_id:
            conns = tuple(c for c in conns if c.id == connection_id)
            if not conns:
                raise ResolveError(
                    hub_error(400, f"connection {connection_id!r} of {spec.id!r} is not active", code="no_connection")
                )
        node = self.snapshot.nodes_by_id.get(spec.id)
        secret = node.headers_enc if node is not None else ""
        targets = [Target(spec, conn, model, secret) for conn in conns]
        return self.order_targets(spec, targets) if self.order_targets else targets
