"""The translator's settings, read once from the environment in ``main()``."""

from __future__ import annotations

from omniroute_core.settings import CommonSettings

__all__ = ["TranslatorSettings"]


class TranslatorSettings(CommonSettings):
    """``TRANSLATOR_PORT`` (gRPC) and ``METRICS_PORT`` (Prometheus ``/metrics``; 0 disables it)."""

    translator_port: int = 50051
    metrics_port: int = 9101
