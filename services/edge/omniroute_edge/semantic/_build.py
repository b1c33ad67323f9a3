"""Building the semantic tier from the edge settings (called from the app lifespan)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from qdrant_client import AsyncQdrantClient

from omniroute.v1 import executor_pb2_grpc
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_edge.cache import ExactCache
from omniroute_edge.semantic._client_store import ClientStore
from omniroute_edge.semantic._edge_store import EdgeStore
from omniroute_edge.semantic._embed import ExecutorEmbedder
from omniroute_edge.semantic._store import VectorStore
from omniroute_edge.semantic._tier import SemanticCache, SemanticLimits, SemanticMetrics, SettingView
from omniroute_edge.settings import EdgeSettings

__all__ = ["build_semantic_cache"]

log = logging.getLogger(__name__)


async def build_semantic_cache(
    settings: EdgeSettings,
    replies: ExactCache,
    executor: executor_pb2_grpc.ExecutorAsyncStub,
    snapshot: Callable[[], ConfigSnapshot],
    registry: CollectorRegistry,
) -> SemanticCache | None:
    """The started tier, or None when it is switched off or its store cannot be opened (logged: the edge serves
    without it rather than not at all)."""
    if not settings.semantic_cache:
        return None
    store: VectorStore = (
        ClientStore(AsyncQdrantClient(url=settings.qdrant_url, timeout=int(max(1, settings.semantic_store_timeout_s))))
        if settings.qdrant_url
        else EdgeStore(settings.qdrant_path)
    )
    limits = SemanticLimits(
        ttl_s=settings.cache_ttl_s,
        max_points=settings.semantic_max_points,
        max_chars=settings.semantic_max_chars,
        embed_timeout_s=settings.semantic_embed_timeout_s,
        store_timeout_s=settings.semantic_store_timeout_s,
        max_inflight=settings.semantic_max_inflight,
        pause_s=settings.semantic_pause_s,
        sweep_interval_s=settings.semantic_sweep_interval_s,
    )
    tier = SemanticCache(
        store, ExecutorEmbedder(executor), replies, SettingView(snapshot), SemanticMetrics(registry), limits
    )
    try:
        await tier.start()
    except Exception:
        log.error("the semantic cache is off: its vector store could not be opened", exc_info=True)
        await tier.stop()
        return None
    return tier
