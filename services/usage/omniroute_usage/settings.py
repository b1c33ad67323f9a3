"""Settings of the usage service, read once from the environment in ``main()``."""

from __future__ import annotations

from omniroute_core.settings import CommonSettings

__all__ = ["UsageSettings"]


class UsageSettings(CommonSettings):
    """``CommonSettings`` plus the usage service's ports and consumer tuning (env names are the upper-case
    field names: ``USAGE_PORT``, ``METRICS_PORT``, ``BATCH_SIZE``, ...)."""

    usage_port: int = 50053
    # 0 disables the metrics endpoint
    metrics_port: int = 9103
    # largest batch one fetch may return and one transaction stores
    batch_size: int = 500
    # how long a fetch waits for the first message before looping (bounds shutdown latency too)
    batch_wait_ms: int = 200
    # under a steady trickle, at most one batch per this many ms (the rest wait and join the next batch): metering
    # then costs one transaction per interval rather than one per message; 0 stores each fetch at once
    batch_linger_ms: int = 200
    # the durable JetStream consumer; replicas sharing this name share the work
    consumer_name: str = "usage-writer"
    # an unacked message is redelivered after this long (a crashed replica's batch moves on)
    ack_wait_s: float = 30.0
    pg_pool_size: int = 4
    # give up starting when PostgreSQL or NATS stay unreachable this long
    startup_timeout_s: float = 60.0
    # price overrides set through another replica apply here within this many seconds
    pricing_refresh_s: float = 10.0
    # share of a budget's limit at which the once-per-period warning is sent
    budget_warn_ratio: float = 0.8
