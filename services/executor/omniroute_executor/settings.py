"""Executor settings, read once from the environment in ``main()``."""

from __future__ import annotations

from omniroute_core.settings import CommonSettings

__all__ = ["ExecutorSettings"]


class ExecutorSettings(CommonSettings):
    executor_port: int = 50052
    metrics_port: int = 9102
    upstream_connect_timeout_s: float = 5.0
    # longest silence between two reads of an upstream response (first byte included)
    upstream_read_timeout_s: float = 120.0
    upstream_max_connections: int = 1000
    usage_queue_size: int = 100_000
