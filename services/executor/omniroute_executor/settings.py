"""Executor settings, read once from the environment in ``main()``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from omniroute_core.settings import CommonSettings
from omniroute_executor.upstream import QueueLimits

__all__ = ["ExecutorSettings"]


class ExecutorSettings(CommonSettings):
    executor_port: int = 50052
    # the gRPC server: "h2" serves the calls in the event loop (omniroute_core.grpc_h2, no gRPC core threads:
    # ~0.45 ms less per hop, bench/PROFILE.md); "grpc" is stock grpc.aio, the fallback
    executor_server: Literal["h2", "grpc"] = "h2"
    # connections this old (±10 %) get GOAWAY, so clients reconnect and spread over the replicas again; 0: off
    # (the Helm chart sets it; one replica, as in docker-compose, gains nothing)
    grpc_max_connection_age_s: float = 0.0
    # the translator's client: "asyncio" (omniroute_core.grpc_h2.H2Channel, HTTP/2 in the event loop) or "grpc"
    # (grpc.aio, with its core threads)
    translator_client: Literal["asyncio", "grpc"] = "asyncio"
    metrics_port: int = 9102
    # the transport of direct provider requests: "h1" our HTTP/1.1 client (asyncio + httptools, ~50 µs less CPU
    # per request, bench/PROFILE.md round 5); "aiohttp" the previous one, kept to A/B-measure and to fall back.
    # Requests through an outbound proxy use aiohttp either way.
    upstream_client: Literal["h1", "aiohttp"] = "h1"
    upstream_connect_timeout_s: float = 5.0
    # longest silence between two reads of an upstream response (first byte included)
    upstream_read_timeout_s: float = 120.0
    upstream_max_connections: int = 1000
    # each provider pool's concurrency queue (overridable per provider in settings.routing.providers): requests in
    # flight, requests waiting for a slot, longest wait; beyond them the attempt fails at once with 503 and the
    # combo moves on
    upstream_max_concurrent: int = 1000
    upstream_max_queued: int = 1000
    upstream_queue_timeout_s: float = 30.0
    # what a refusal tells clients to wait (Retry-After)
    upstream_busy_retry_after_s: float = 1.0
    # lets provider and proxy addresses be link-local or cloud metadata endpoints (refused by default)
    allow_link_local_providers: bool = False
    usage_queue_size: int = 100_000
    # how long a usage event may wait to share its JetStream publish with later ones (when fewer than a batch's
    # 100 are queued): every publish costs NATS, the executor and the usage writer a round of wake-ups, ~0.3 ms
    # of CPU per request at 200 req/s with 20 ms (bench/PROFILE.md); metering is asynchronous anyway, and the
    # usage writer holds its own batches up to BATCH_LINGER_MS
    usage_publish_linger_s: float = 0.1
    # where usage events wait while NATS is unreachable; default: <OMNIROUTE_DATA_DIR>/spool/executor-<port>,
    # else the temp folder. Give each replica its own persistent folder (a volume) in production.
    usage_spool_dir: str = ""
    omniroute_data_dir: str = ""
    # the built-in `local` embedding model: encodes run one at a time per thread, in this many threads (each also
    # limits its BLAS library to one thread, so the model never takes more cores than this)
    local_embedding_concurrency: int = 1
    # AssemblyAI's transcript jobs: how often to poll, and for how long at most
    transcription_poll_interval_s: float = 1.0
    transcription_max_wait_s: float = 600.0
    # the control plane's provider tests, model lists and proxy tests (ProviderAdmin): each call's whole budget
    admin_call_timeout_s: float = 15.0

    def queue_limits(self) -> QueueLimits:
        return QueueLimits(
            max_concurrent=max(1, self.upstream_max_concurrent),
            max_queued=max(0, self.upstream_max_queued),
            queue_timeout_s=self.upstream_queue_timeout_s,
            retry_after_ms=int(self.upstream_busy_retry_after_s * 1000),
        )

    def spool_folder(self) -> Path:
        if self.usage_spool_dir:
            return Path(self.usage_spool_dir)
        root = Path(self.omniroute_data_dir) / "spool" if self.omniroute_data_dir else Path(tempfile.gettempdir())
        return root / f"omniroute-executor-{self.executor_port}"
