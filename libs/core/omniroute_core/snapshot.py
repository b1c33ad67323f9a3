"""The configuration snapshot: what the control plane publishes and the data plane serves from.

The dashboard owns the tables; after every change it serialises them into one JSON document and puts it in the
NATS KV bucket (:mod:`omniroute_core.events`). The edge and the executor watch that key
(:mod:`omniroute_core.snapshot_watcher`) and swap in a fresh,
immutable :class:`ConfigSnapshot`, so no SQL runs on the request path and a PostgreSQL outage leaves the data
plane serving its last snapshot. Credentials stay encrypted inside the snapshot; only the executor decrypts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from omniroute_core import jsonx
from omniroute_core.catalog import ProviderSpec
from omniroute_core.nodes import CustomModel, ProviderNode, parse_custom_model, parse_node

__all__ = [
    "CACHE_POLICIES",
    "COMBO_STRATEGIES",
    "EMPTY",
    "MAX_COMBO_DEPTH",
    "NO_LIMITS",
    "ApiKey",
    "Combo",
    "ComboStep",
    "ConfigSnapshot",
    "ProviderConnection",
    "RateLimits",
    "parse_combo",
    "parse_snapshot",
]

T = TypeVar("T")

# The combo strategies the executor implements; the dashboard refuses any other (shared here because services
# never import each other).
COMBO_STRATEGIES = frozenset(
    {
        "priority",
        "weighted",
        "round-robin",
        "random",
        "least-used",
        "cost-optimized",
        "latency-optimized",
        "fill-first",
        "p2c",
    }
)
# How many combos may nest: a combo whose step is a combo whose step is a combo is depth 3.
MAX_COMBO_DEPTH = 3


@dataclass(frozen=True, slots=True)
class ProviderConnection:
    """One account of a provider (what ``/api/providers`` manages)."""

    id: str
    provider: str
    name: str
    base_url: str
    api_key_enc: str
    priority: int = 0
    is_active: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)  # the provider's URL parameters (Azure's apiVersion)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-key limits (None: no limit of that kind). Windows are one minute; ``concurrent`` counts in-flight
    requests. The JSON shape is ``{"rpm", "tpm", "concurrent"}``."""

    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None

    @property
    def any(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.concurrent is not None

    def over(self, defaults: RateLimits) -> RateLimits:
        """These limits with every unset field taken from ``defaults``."""
        return RateLimits(
            self.rpm if self.rpm is not None else defaults.rpm,
            self.tpm if self.tpm is not None else defaults.tpm,
            self.concurrent if self.concurrent is not None else defaults.concurrent,
        )

    def to_json(self) -> dict[str, int | None]:
        return {"rpm": self.rpm, "tpm": self.tpm, "concurrent": self.concurrent}

    @classmethod
    def parse(cls, raw: Any) -> RateLimits:
        """From the JSON shape; anything missing, null, non-integer or below 1 is "no limit"."""
        if not isinstance(raw, Mapping):
            return NO_LIMITS

        def field_(name: str) -> int | None:
            value = raw.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None

        return cls(field_("rpm"), field_("tpm"), field_("concurrent"))


NO_LIMITS = RateLimits()


# when a reply may come from (and go into) the edge's caches; see omniroute_edge.cache.eligible
CACHE_POLICIES = frozenset({"deterministic", "always", "never"})


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A gateway key. ``allowed_models`` / ``blocked_models`` are fnmatch patterns matched against the model
    string the client sent (empty allowed list: every model); ``rate_limits`` are enforced by the edge;
    ``cache_policy`` (one of :data:`CACHE_POLICIES`, empty: the gateway's setting) overrides cache eligibility."""

    id: str
    name: str
    key_hash: str
    scopes: tuple[str, ...] = ()
    revoked: bool = False
    expires_at_ms: int | None = None
    no_log: bool = False
    allowed_models: tuple[str, ...] = ()
    blocked_models: tuple[str, ...] = ()
    rate_limits: RateLimits = NO_LIMITS
    cache_policy: str = ""

    def usable(self, now_ms: int) -> bool:
        return not self.revoked and (self.expires_at_ms is None or now_ms < self.expires_at_ms)

    def may_use(self, model: str) -> bool:
        """Whether the key's model patterns let it call ``model`` (a blocked match always wins; a non-empty
        allowed list must match too). Case-sensitive, so the answer does not depend on the operating system."""
        if any(fnmatchcase(model, pattern) for pattern in self.blocked_models):
            return False
        return not self.allowed_models or any(fnmatchcase(model, pattern) for pattern in self.allowed_models)


@dataclass(frozen=True, slots=True)
class ComboStep:
    """One step of a combo: a model string (``provider/model``, an alias or another combo's name), its weight
    for the weighted strategy, and optionally the one connection (account) it must use."""

    model: str
    weight: int = 1
    connection_id: str = ""


@dataclass(frozen=True, slots=True)
class Combo:
    """A named fallback chain (what ``/api/combos`` manages). ``config`` holds the routing knobs in the API's
    camelCase (``maxRetries``, ``retryDelayMs``, ``timeoutMs``, ``fallbackDelayMs``, ``maxAttempts``)."""

    id: str
    name: str
    strategy: str
    steps: tuple[ComboStep, ...]
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    version: int
    connections: tuple[ProviderConnection, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    keys_by_hash: Mapping[str, ApiKey] = field(default_factory=dict)
    connections_by_provider: Mapping[str, tuple[ProviderConnection, ...]] = field(default_factory=dict)
    combos: tuple[Combo, ...] = ()
    combos_by_name: Mapping[str, Combo] = field(default_factory=dict)
    # model aliases (alias → target model string), provider nodes and custom models (omniroute_core.nodes)
    aliases: Mapping[str, str] = field(default_factory=dict)
    nodes: tuple[ProviderNode, ...] = ()
    custom_models: tuple[CustomModel, ...] = ()
    # derived: each node as a provider, by node id and by lower-case prefix; custom models by name and by
    # (provider, model)
    node_specs: Mapping[str, ProviderSpec] = field(default_factory=dict)
    nodes_by_id: Mapping[str, ProviderNode] = field(default_factory=dict)
    nodes_by_prefix: Mapping[str, ProviderSpec] = field(default_factory=dict)
    custom_models_by_name: Mapping[str, tuple[CustomModel, ...]] = field(default_factory=dict)
    custom_models_by_key: Mapping[tuple[str, str], CustomModel] = field(default_factory=dict)
    # what readers derive from this snapshot on their request paths, kept with it (see derived); never copied
    # by dataclasses.replace, so a changed snapshot starts empty
    _derived: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``'s value, computed once per snapshot and ``key``: for data derived from this snapshot alone
        (a parsed setting, a provider's active connections), so requests do not redo it. ``key`` names what is
        derived (a tuple starting with the deriving module's name); keys must come from a bounded set."""
        try:
            return self._derived[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._derived[key] = build()
            return value

    @classmethod
    def build(
        cls,
        version: int,
        connections: tuple[ProviderConnection, ...],
        api_keys: tuple[ApiKey, ...],
        settings: Mapping[str, Any],
        combos: tuple[Combo, ...] = (),
        *,
        aliases: Mapping[str, str] | None = None,
        nodes: tuple[ProviderNode, ...] = (),
        custom_models: tuple[CustomModel, ...] = (),
    ) -> ConfigSnapshot:
        by_provider: dict[str, list[ProviderConnection]] = {}
        for conn in sorted(connections, key=lambda c: (c.priority, c.id)):
            by_provider.setdefault(conn.provider, []).append(conn)
        by_name: dict[str, list[CustomModel]] = {}
        for custom in custom_models:
            by_name.setdefault(custom.model, []).append(custom)
        node_specs = {n.id: n.spec(tuple(m.model for m in custom_models if m.provider == n.id)) for n in nodes}
        return cls(
            version=version,
            connections=connections,
            api_keys=api_keys,
            settings=settings,
            keys_by_hash={k.key_hash: k for k in api_keys},
            connections_by_provider={p: tuple(cs) for p, cs in by_provider.items()},
            combos=combos,
            combos_by_name={c.name: c for c in combos},
            aliases=dict(aliases or {}),
            nodes=nodes,
            custom_models=custom_models,
            node_specs=node_specs,
            nodes_by_id={n.id: n for n in nodes},
            nodes_by_prefix={n.prefix.lower(): node_specs[n.id] for n in nodes},
            custom_models_by_name={m: tuple(cs) for m, cs in by_name.items()},
            custom_models_by_key={(c.provider, c.model): c for c in custom_models},
        )

    def to_json(self) -> bytes:
        return jsonx.dumps(
            {
                "version": self.version,
                "providers": [
                    {
                        "id": c.id,
                        "provider": c.provider,
                        "name": c.name,
                        "baseUrl": c.base_url,
                        "apiKeyEnc": c.api_key_enc,
                        "priority": c.priority,
                        "isActive": c.is_active,
                        "headers": dict(c.headers),
                        "options": dict(c.options),
                    }
                    for c in self.connections
                ],
                "apiKeys": [
                    {
                        "id": k.id,
                        "name": k.name,
                        "keyHash": k.key_hash,
                        "scopes": list(k.scopes),
                        "revoked": k.revoked,
                        "expiresAt": k.expires_at_ms,
                        "noLog": k.no_log,
                        "allowedModels": list(k.allowed_models),
                        "blockedModels": list(k.blocked_models),
                        "rateLimits": k.rate_limits.to_json(),
                        "cachePolicy": k.cache_policy or None,
                    }
                    for k in self.api_keys
                ],
                "settings": dict(self.settings),
                "combos": [
                    {
                        "id": c.id,
                        "name": c.name,
                        "strategy": c.strategy,
                        "models": [
                            {"model": st.model, "weight": st.weight, "connectionId": st.connection_id or None}
                            for st in c.steps
                        ],
                        "config": dict(c.config),
                    }
                    for c in self.combos
                ],
                "aliases": dict(self.aliases),
                "providerNodes": [n.to_json() for n in self.nodes],
                "customModels": [m.to_json() for m in self.custom_models],
            }
        )


EMPTY = ConfigSnapshot.build(0, (), (), {})


def parse_snapshot(data: bytes) -> ConfigSnapshot:
    """Parse the published JSON. Raises ``ValueError`` / ``KeyError`` on a malformed document."""
    doc = jsonx.loads(data)
    connections = tuple(
        ProviderConnection(
            id=str(p["id"]),
            provider=str(p["provider"]),
            name=str(p.get("name", "")),
            base_url=str(p.get("baseUrl") or ""),
            api_key_enc=str(p.get("apiKeyEnc") or ""),
            priority=int(p.get("priority", 0)),
            is_active=bool(p.get("isActive", True)),
            headers=dict(p.get("headers") or {}),
            options={str(k): str(v) for k, v in (p.get("options") or {}).items()},
        )
        for p in doc.get("providers", [])
    )
    keys = tuple(
        ApiKey(
            id=str(k["id"]),
            name=str(k.get("name", "")),
            key_hash=str(k["keyHash"]),
            scopes=tuple(k.get("scopes") or ()),
            revoked=bool(k.get("revoked", False)),
            expires_at_ms=k.get("expiresAt"),
            no_log=bool(k.get("noLog", False)),
            # absent in snapshots published before key restrictions existed
            allowed_models=tuple(str(m) for m in k.get("allowedModels") or ()),
            blocked_models=tuple(str(m) for m in k.get("blockedModels") or ()),
            rate_limits=RateLimits.parse(k.get("rateLimits")),
            cache_policy=_cache_policy(k.get("cachePolicy")),
        )
        for k in doc.get("apiKeys", [])
    )
    combos = tuple(parse_combo(c) for c in doc.get("combos") or [])
    # aliases, nodes and custom models are absent in snapshots published before they existed
    return ConfigSnapshot.build(
        int(doc["version"]),
        connections,
        keys,
        doc.get("settings") or {},
        combos,
        aliases={str(k): str(v) for k, v in (doc.get("aliases") or {}).items()},
        nodes=tuple(parse_node(n) for n in doc.get("providerNodes") or []),
        custom_models=tuple(parse_custom_model(m) for m in doc.get("customModels") or []),
    )


def _cache_policy(raw: Any) -> str:
    return raw if isinstance(raw, str) and raw in CACHE_POLICIES else ""


def parse_combo(raw: Mapping[str, Any]) -> Combo:
    """A published combo; a step may be a bare model string (the API's short form) or an object."""
    steps: list[ComboStep] = []
    for step in raw.get("models") or []:
        if isinstance(step, str):
            steps.append(ComboStep(step))
        else:
            steps.append(
                ComboStep(str(step["model"]), int(step.get("weight") or 1), str(step.get("connectionId") or ""))
            )
    return Combo(
        id=str(raw.get("id") or raw["name"]),
        name=str(raw["name"]),
        strategy=str(raw.get("strategy") or "priority"),
        steps=tuple(steps),
        config=dict(raw.get("config") or {}),
    )
