"""Edge settings, read once from the environment in ``main()``."""

from __future__ import annotations

from typing import Literal

from omniroute_core.settings import CommonSettings

__all__ = ["EdgeSettings"]


class EdgeSettings(CommonSettings):
    edge_port: int = 20128
    metrics_port: int = 9100
    require_api_key: bool = False
    max_body_bytes: int = 10 * 1024 * 1024
    # whole-request deadline passed to the executor (streams included)
    request_timeout_s: float = 600.0
    # "deterministic" (temperature 0 only), "always" or "never"
    cache_policy: str = "deterministic"
    cache_ttl_s: float = 3600.0
    cache_memory_max: int = 500
    cache_db_max: int = 10_000
    # largest reply kept for a duplicate or a cache hit
    replay_max_bytes: int = 1024 * 1024
    # the semantic tier (behind the exact one; its threshold and embedding model are the dashboard's cache setting):
    # a Qdrant server shared by every edge (QDRANT_URL), else Qdrant's engine in-process under QDRANT_PATH (one
    # folder per edge process; empty: a temporary folder)
    semantic_cache: bool = True
    qdrant_path: str = ""
    qdrant_url: str = ""
    semantic_max_points: int = 10_000
    # longer questions are left to the exact tier
    semantic_max_chars: int = 2000
    semantic_embed_timeout_s: float = 2.0
    semantic_store_timeout_s: float = 0.5
    semantic_max_inflight: int = 32
    # after an embedding or store failure the tier is skipped this long
    semantic_pause_s: float = 5.0
    semantic_sweep_interval_s: float = 30.0
    # CIDRs (comma-separated) of the proxies whose X-Forwarded-For is believed (the IP filter's client address)
    trusted_proxies: str = ""
    # how long a key's CheckBudget answer is reused, and how long the edge waits for one before failing open
    budget_cache_ttl_s: float = 2.0
    budget_check_timeout_s: float = 0.5
    # the gRPC client of the executor hop: "asyncio" (omniroute_core.grpc_h2, HTTP/2 in the event loop) or
    # "grpc" (grpc.aio; its core threads cost ~0.5 ms per call on an idle machine, see bench/PROFILE.md)
    executor_client: Literal["asyncio", "grpc"] = "asyncio"
    # the translator's client (RenderError): the same choice
    translator_client: Literal["asyncio", "grpc"] = "asyncio"
