"""Model resolution: a model string → the provider and upstream model, and a provider's usable connections.

``prefix/model`` splits at the first ``/`` (``nebius/Qwen/Qwen3-Embedding-8B`` → provider ``nebius``, model
``Qwen/Qwen3-Embedding-8B``). A string whose prefix is not a known provider, or that has no ``/``, is a bare
name resolved by catalog inference; an ambiguous bare name is a 400 listing the candidates. Combo names are
resolved before this, by :mod:`omniroute_executor.routing.plan`.
"""

from __future__ import annotations

from dataclasses import dataclass

from omniroute.v1 import common_pb2
from omniroute_core.catalog import Catalog, ProviderSpec
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import ConfigSnapshot, ProviderConnection

__all__ = ["ResolveError", "Target", "active_connections", "builtin_connection", "resolve_model"]


@dataclass(frozen=True, slots=True)
class Target:
    """One thing an attempt can be sent to: a provider account and the upstream model name."""

    provider: ProviderSpec
    connection: ProviderConnection
    model: str

    @property
    def base_url(self) -> str:
        return (self.connection.base_url or self.provider.base_url).rstrip("/")

    @property
    def key(self) -> str:
        """Identity for routing statistics (latency, use counts)."""
        return f"{self.connection.id}|{self.model}"


class ResolveError(Exception):
    """The model string cannot be served; ``error`` says why, in hub vocabulary."""

    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


def resolve_model(model: str, catalog: Catalog) -> tuple[ProviderSpec, str]:
    """The provider and upstream model of ``model``. Raises :class:`ResolveError` (400 or 404)."""
    if not model:
        raise ResolveError(hub_error(400, "'model' is required", param="model", code="model_required"))
    prefix, sep, rest = model.partition("/")
    spec = catalog.lookup(prefix) if sep else None
    if spec is not None:
        if not rest:
            raise ResolveError(hub_error(400, f"model string {model!r} names no model after the provider prefix"))
        return spec, rest
    candidates = catalog.providers_of_model(model)
    if len(candidates) > 1:
        names = ", ".join(f"{p.id}/{model}" for p in candidates)
        raise ResolveError(
            hub_error(400, f"model {model!r} is ambiguous; use one of: {names}", param="model", code="model_ambiguous")
        )
    if not candidates:
        hint = f"unknown provider {prefix!r}" if sep else "no provider lists it"
        raise ResolveError(
            hub_error(
                404,
                f"model {model!r} not found ({hint}); use 'provider/model', e.g. 'openai/gpt-4o'",
                type_="invalid_request_error",
                param="model",
                code="model_not_found",
            )
        )
    return candidates[0], model


def builtin_connection(spec: ProviderSpec) -> ProviderConnection:
    """The one implicit connection of a built-in provider (no account, no key)."""
    return ProviderConnection(id=f"builtin:{spec.id}", provider=spec.id, name="built-in", base_url="", api_key_enc="")


def active_connections(spec: ProviderSpec, snapshot: ConfigSnapshot) -> tuple[ProviderConnection, ...]:
    """The provider's active connections in priority order (a built-in provider's implicit one when it has none
    configured). Raises :class:`ResolveError` (400) when none."""
    conns = tuple(c for c in snapshot.connections_by_provider.get(spec.id, ()) if c.is_active)
    if not conns and spec.builtin:
        return (builtin_connection(spec),)
    if not conns:
        raise ResolveError(
            hub_error(
                400,
                f"no active connection for provider {spec.id!r}; add one with POST /api/providers",
                code="provider_not_configured",
            )
        )
    return conns
