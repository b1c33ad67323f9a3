"""The provider catalog: providers are data (DESIGN.md), loaded from ``providers.json`` beside this module.

Prices live in ``pricing.json`` beside it, the one price book of the gateway: the usage service bills with it
(operators override entries through ``PUT /api/pricing``) and cost-optimized routing ranks with it.

It lives in the shared core because the executor routes with it and the dashboard serves and validates against it
(``/api/models/catalog``, provider nodes); services never import each other.

Nothing in the executor branches on a provider or model name; what a provider speaks, where it lives, how it
authenticates and what it can do are fields of :class:`ProviderSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.formats import FORMAT_BY_NAME

__all__ = ["NO_FORMAT", "Catalog", "ProviderSpec", "load_catalog", "price_document"]

# the catalog's "format" of a provider that speaks no chat format (a transcription-only API, the built-in model)
NO_FORMAT = "none"


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    id: str
    format: common_pb2.Format.ValueType
    base_url: str
    auth: str  # "bearer" | "token" (Deepgram) | "raw" (the key alone in Authorization) | "x-api-key" | ... | "none"
    paths: Mapping[str, str]
    aliases: tuple[str, ...] = ()
    capabilities: frozenset[str] = frozenset()
    models: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # sent on every request (e.g. API versions)
    # USD per million tokens, {"model": {"input": 2.5, "output": 10}}; optional, read by cost-optimized routing
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # models of the other operations, {"embeddings": [...], "images": [...], "transcription": [...]}; `models`
    # are the chat models
    operation_models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the wire dialect of an operation when it is not the provider's format ({"images": "together"})
    dialects: Mapping[str, str] = field(default_factory=dict)
    # members added to a request body that lacks them ({"embeddings": {"input_type": "query"}})
    request_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # members the provider refuses, removed from the request body ({"images": ["size", "quality", "style"]})
    request_omit: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # served inside the gateway (the `local` embedding model): usable without a configured connection
    builtin: bool = False
    # models known to accept a reasoning budget (the thinking-budget setting may turn reasoning on for them)
    reasoning_models: frozenset[str] = frozenset()
    # defaults of the ``{name}`` placeholders in ``paths`` besides ``{model}`` (Azure's ``{apiVersion}``); a
    # connection's ``options`` override them
    params: Mapping[str, str] = field(default_factory=dict)
    # the catalog has no usable base URL: every connection must bring its own (Azure's resource endpoint)
    base_url_required: bool = False

    def supports(self, operation: str) -> bool:
        """Whether the provider serves ``operation`` ("chat", "embeddings", "images", "transcription")."""
        return operation in self.paths

    def models_for(self, operation: str) -> tuple[str, ...]:
        """The catalog's models of ``operation`` (for chat: ``models``)."""
        return self.models if operation == "chat" else self.operation_models.get(operation, ())

    def dialect(self, operation: str, default: str) -> str:
        """The wire dialect ``operation`` is spoken in: the catalog's, else ``default`` (the format's own)."""
        return self.dialects.get(operation, default)

    def price(self, model: str) -> float | None:
        """Input plus output price per million tokens of ``model``, or None when the catalog has none."""
        entry = self.prices.get(model)
        if not entry:
            return None
        return float(entry.get("input", 0.0)) + float(entry.get("output", 0.0))

    def path(self, operation: str, *, stream: bool, model: str, options: Mapping[str, str] | None = None) -> str | None:
        """The request path of ``operation``, or None when the provider does not serve it.

        ``{model}`` is filled in for providers that route by URL (Gemini, Azure deployments); any other
        ``{name}`` from ``options`` (a connection's), else from the catalog's ``params``.
        """
        template = (self.paths.get(operation + "Stream") if stream else None) or self.paths.get(operation)
        if template is None:
            return None
        if "{" not in template:  # the usual fixed path
            return template
        path = template.replace("{model}", quote(model, safe="/"))
        if "{" in path:
            for name, default in self.params.items():
                value = (options or {}).get(name) or default
                path = path.replace("{" + name + "}", quote(value, safe=""))
        return path


@dataclass(frozen=True, slots=True)
class Catalog:
    providers: Mapping[str, ProviderSpec]
    by_prefix: Mapping[str, ProviderSpec] = field(default_factory=dict)

    def lookup(self, prefix: str) -> ProviderSpec | None:
        return self.by_prefix.get(prefix.lower())

    def providers_of_model(self, model: str) -> list[ProviderSpec]:
        """Catalog inference for a bare model name: every provider that lists it (for any operation)."""
        return [
            p
            for p in self.providers.values()
            if model in p.models or any(model in models for models in p.operation_models.values())
        ]


def parse_catalog(doc: Mapping[str, object], prices: Mapping[str, Any] | None = None) -> Catalog:
    """Build a catalog from its JSON document and a price book (``pricing.json``'s ``providers`` member:
    ``{provider: {model: {"input", "output", ...}}}``); a provider entry's own ``prices`` member wins over the
    book's. Raises ``ValueError`` on an unknown format or a
    clashing prefix."""
    providers: dict[str, ProviderSpec] = {}
    by_prefix: dict[str, ProviderSpec] = {}
    entries = doc.get("providers")
    if not isinstance(entries, list):
        raise ValueError("catalog: 'providers' must be a list")
    for raw in entries:
        fmt = common_pb2.FORMAT_UNSPECIFIED if raw["format"] == NO_FORMAT else FORMAT_BY_NAME.get(raw["format"])
        if fmt is None:
            raise ValueError(f"catalog: provider {raw['id']!r} has unknown format {raw['format']!r}")
        spec = ProviderSpec(
            id=raw["id"],
            format=fmt,
            base_url=raw["baseUrl"].rstrip("/"),
            auth=raw.get("auth", "bearer"),
            paths=dict(raw.get("paths", {})),
            aliases=tuple(raw.get("aliases", ())),
            capabilities=frozenset(raw.get("capabilities", ())),
            models=tuple(raw.get("models", ())),
            headers=dict(raw.get("headers", {})),
            prices={m: dict(p) for m, p in {**(prices or {}).get(raw["id"], {}), **raw.get("prices", {})}.items()},
            operation_models={op: tuple(ms) for op, ms in raw.get("operationModels", {}).items()},
            dialects=dict(raw.get("dialects", {})),
            request_defaults={op: dict(d) for op, d in raw.get("requestDefaults", {}).items()},
            request_omit={op: tuple(names) for op, names in raw.get("requestOmit", {}).items()},
            builtin=bool(raw.get("builtin", False)),
            reasoning_models=frozenset(raw.get("reasoningModels", ())),
            params={str(k): str(v) for k, v in raw.get("params", {}).items()},
            base_url_required=not raw["baseUrl"] and not raw.get("builtin", False),
        )
        providers[spec.id] = spec
        for prefix in (spec.id, *spec.aliases):
            if prefix in by_prefix:
                raise ValueError(f"catalog: prefix {prefix!r} is claimed twice")
            by_prefix[prefix] = spec
    return Catalog(providers=providers, by_prefix=by_prefix)


def price_document() -> dict[str, Any]:
    """The shipped price book: ``{"source", "date", "unit", "notes", "providers": {provider: {model: rates}}}``,
    rates in USD per million tokens (``input``, ``output``, optional ``cachedInput``, ``cacheCreation``,
    ``reasoning``)."""
    doc = jsonx.loads(resources.files(__package__).joinpath("pricing.json").read_bytes())
    assert isinstance(doc, dict), "pricing.json is an object"
    return doc


def load_catalog() -> Catalog:
    """The catalog shipped with the gateway, with the shipped prices."""
    data = resources.files(__package__).joinpath("providers.json").read_bytes()
    return parse_catalog(jsonx.loads(data), price_document()["providers"])
