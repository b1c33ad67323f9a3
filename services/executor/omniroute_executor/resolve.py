"""Model resolution: a model string and the current snapshot → the provider, account and upstream model.

``prefix/model`` splits at the first ``/`` (``nebius/Qwen/Qwen3-Embedding-8B`` → provider ``nebius``, model
``Qwen/Qwen3-Embedding-8B``). A string whose prefix is not a known provider, or that has no ``/``, is a bare
name resolved by catalog inference; an ambiguous bare name is a 400 listing the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

from omniroute.v1 import common_pb2
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import ConfigSnapshot, ProviderConnection
from omniroute_executor.catalog import Catalog, ProviderSpec

__all__ = ["ResolveError", "Target", "resolve"]


@dataclass(frozen=True, slots=True)
class Target:
    provider: ProviderSpec
    connection: ProviderConnection
    model: str

    @property
    def base_url(self) -> str:
        return (self.connection.base_url or self.provider.base_url).rstrip("/")


class ResolveError(Exception):
    """The model string cannot be served; ``error`` says why, in hub vocabulary."""

    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


def resolve(model: str, catalog: Catalog, snapshot: ConfigSnapshot) -> Target:
    """Resolve ``model``. Raises :class:`ResolveError` (400 or 404) when it names nothing servable."""
    if not model:
        raise ResolveError(hub_error(400, "'model' is required", param="model", code="model_required"))
    prefix, sep, rest = model.partition("/")
    spec = catalog.lookup(prefix) if sep else None
    if spec is not None:
        if not rest:
            raise ResolveError(hub_error(400, f"model string {model!r} names no model after the provider prefix"))
        return Target(spec, _connection(spec, snapshot), rest)
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
    spec = candidates[0]
    return Target(spec, _connection(spec, snapshot), model)


def _connection(spec: ProviderSpec, snapshot: ConfigSnapshot) -> ProviderConnection:
    for conn in snapshot.connections_by_provider.get(spec.id, ()):
        if conn.is_active:
            return conn
    raise ResolveError(
        hub_error(
            400,
            f"no active connection for provider {spec.id!r}; add one with POST /api/providers",
            code="provider_not_configured",
        )
    )
