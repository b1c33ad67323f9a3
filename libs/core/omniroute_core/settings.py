"""Typed settings shared by every service, read once from the environment in ``main()``.

Each service subclasses :class:`CommonSettings` with its own fields. Defaults are the single-machine layout that
``make run`` uses; a Helm deployment sets every address explicitly.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["CommonSettings"]


class CommonSettings(BaseSettings):
    """Addresses of the backing servers and of the sibling services, plus logging."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    log_level: str = "INFO"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/omniroute"
    redis_url: str = "redis://127.0.0.1:6379/0"
    nats_url: str = "nats://127.0.0.1:4222"
    translator_addr: str = "127.0.0.1:50051"
    executor_addr: str = "127.0.0.1:50052"
    usage_addr: str = "127.0.0.1:50053"
    dashboard_url: str = "http://127.0.0.1:20129"
    # base64 of 32 random bytes; provider credentials are AES-GCM encrypted with it
    omniroute_encryption_key: str = ""
    bind_host: str = "127.0.0.1"
    # idempotency window: the edge enforces it, the control plane reports it (GET /api/cache)
    idempotency_window_ms: int = 5000
