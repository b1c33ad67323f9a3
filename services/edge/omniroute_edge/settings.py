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
    qdrant_path: str = ""
    qdrant_url: str = ""
    # CIDRs (comma-separated) of the proxies whose X-Forwarded-For is believed (the IP filter's client address)
    trusted_proxies: str = ""
    # how long a key's CheckBudget answer is reused, and how long the edge waits for one before failing open
    budget_cache_ttl_s: float = 2.0
    budget_check_timeout_s: float = 0.5
    # the gRPC client of the executor hop: "asyncio" (omniroute_core.grpc_h2, HTTP/2 in the event loop) or
    # "grpc" (grpc.aio; its core threads cost ~0.5 ms per call on an idle machine, see bench/PROFILE.md)
    executor_client: Literal["asyncio", "grpc"] = "asyncio"
