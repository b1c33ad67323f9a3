"""``OPERATION_LIST_MODELS``: the models a client can call, rendered by the translator in the client's format.

Listed: the catalog models of every provider that has an active connection (and of built-in providers, which
need none), as ``provider/model``, for the operations the route asks for (``meta.list_operations``; all when
empty), then the custom models of such providers and provider nodes (``<prefix>/<model>``), then the combos and the
model aliases that serve one of them. A key with model restrictions sees only the models it may
call. Nothing here calls a provider, so no usage event is published.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from omniroute.v1 import common_pb2, executor_pb2, translator_pb2
from omniroute_core.catalog import Catalog, ProviderSpec
from omniroute_core.resolution import ResolveError, name_model, provider_by_id
from omniroute_core.snapshot import MAX_COMBO_DEPTH, ApiKey, ConfigSnapshot
from omniroute_executor.modalities import OPERATION_NAMES
from omniroute_executor.translate import TranslatorClient

__all__ = ["list_models", "listed_models"]


# a custom model's type → the operation it serves
_OPERATION_OF_TYPE = {"chat": "chat", "embedding": "embeddings", "image": "images", "audio": "transcription"}


def _is_configured(spec: ProviderSpec, snapshot: ConfigSnapshot) -> bool:
    return spec.builtin or any(c.is_active for c in snapshot.connections_by_provider.get(spec.id, ()))


def _configured(catalog: Catalog, snapshot: ConfigSnapshot) -> Iterator[str]:
    for spec in catalog.providers.values():
        if _is_configured(spec, snapshot):
            yield spec.id


def _serves(model: str, operations: Collection[str], catalog: Catalog, snapshot: ConfigSnapshot, depth: int) -> bool:
    """Whether model string ``model`` (a combo's step) serves one of ``operations``."""
    try:
        named = name_model(model, catalog, snapshot)
    except ResolveError:
        return False
    if named.combo is not None:
        return depth < MAX_COMBO_DEPTH and any(
            _serves(step.model, operations, catalog, snapshot, depth + 1) for step in named.combo.steps
        )
    assert named.provider is not None
    spec, upstream = named.provider, named.model
    listed = [op for op in OPERATION_NAMES.values() if upstream in spec.models_for(op)]
    if not listed:  # a model the catalog does not list (a fine-tune, a new release): its provider's main operation
        listed = ["chat"] if spec.supports("chat") else [op for op in OPERATION_NAMES.values() if spec.supports(op)]
    return any(op in operations for op in listed)


def listed_models(
    catalog: Catalog, snapshot: ConfigSnapshot, operations: Collection[str], key: ApiKey | None
) -> list[translator_pb2.ListedModel]:
    """The listing (catalog models, custom models, combos, aliases, in that order), without duplicates."""
    out: dict[str, translator_pb2.ListedModel] = {}
    for provider in _configured(catalog, snapshot):
        spec = catalog.providers[provider]
        for operation in operations:
            if not spec.supports(operation):
                continue
            for model in spec.models_for(operation):
                model_id = f"{provider}/{model}"
                out.setdefault(model_id, translator_pb2.ListedModel(id=model_id, owned_by=provider))
    for custom in snapshot.custom_models:
        owner = provider_by_id(custom.provider, catalog, snapshot)
        if owner is None or _OPERATION_OF_TYPE.get(custom.type) not in operations:
            continue
        if not _is_configured(owner, snapshot):
            continue
        node = snapshot.nodes_by_id.get(owner.id)
        prefix = node.prefix if node is not None else owner.id
        model_id = f"{prefix}/{custom.model}"
        out.setdefault(model_id, translator_pb2.ListedModel(id=model_id, owned_by=prefix))
    for combo in snapshot.combos:
        if _serves(combo.name, operations, catalog, snapshot, 0):
            out.setdefault(combo.name, translator_pb2.ListedModel(id=combo.name, owned_by="combo"))
    for alias in snapshot.aliases:
        if _serves(alias, operations, catalog, snapshot, 0):
            out.setdefault(alias, translator_pb2.ListedModel(id=alias, owned_by="alias"))
    models = list(out.values())
    if key is not None:
        models = [m for m in models if key.may_use(m.id)]
    return models


async def list_models(
    meta: common_pb2.RequestMeta, catalog: Catalog, snapshot: ConfigSnapshot, translator: TranslatorClient
) -> executor_pb2.ExecuteReply:
    """The listing rendered in ``meta.client_format``."""
    names = [OPERATION_NAMES[op] for op in meta.list_operations if op in OPERATION_NAMES]
    operations = names or list(OPERATION_NAMES.values())
    key = next((k for k in snapshot.api_keys if k.id == meta.key_id), None) if meta.key_id else None
    models = listed_models(catalog, snapshot, operations, key)
    rendered = await translator.render_models(translator_pb2.RenderModelsIn(target=meta.client_format, models=models))
    if rendered.HasField("error"):
        body = await translator.render_error(meta.client_format, rendered.error)
        return executor_pb2.ExecuteReply(status=rendered.error.status, content_type="application/json", body=body)
    return executor_pb2.ExecuteReply(status=200, content_type=rendered.content_type, body=rendered.body)
