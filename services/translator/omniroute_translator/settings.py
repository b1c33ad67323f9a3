"""The translator's settings, read once from the environment in ``main()``."""

from __future__ import annotations

from typing import Literal

from omniroute_core.settings import CommonSettings

__all__ = ["TranslatorSettings"]


class TranslatorSettings(CommonSettings):
    """``TRANSLATOR_PORT`` (gRPC) and ``METRICS_PORT`` (Prometheus ``/metrics``; 0 disables it).
    ``WARM_TOKENIZERS``: load the count-tokens tables (~2-4 s of CPU, ~190 MB) in the background at start
    instead of on the first ``CountTokens`` call. ``TRANSLATOR_SERVER``: ``h2`` serves the calls in the event
    loop (``omniroute_core.grpc_h2.H2Server``, no gRPC core threads), ``grpc`` is stock grpc.aio, the fallback."""

    translator_port: int = 50051
    translator_server: Literal["h2", "grpc"] = "h2"
    metrics_port: int = 9101
    warm_tokenizers: bool = True
