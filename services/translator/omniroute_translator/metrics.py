"""The translator's Prometheus metrics, registered on the registry built in ``main()``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from omniroute_core.metrics import LabelledChildren

__all__ = ["TranslatorMetrics"]


class TranslatorMetrics:
    """Calls by RPC, format pair and outcome; call latency; stream bytes in and out."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "translator_calls",
            "Translator RPCs by outcome (ok, error: an Error in the reply, failed: an unexpected exception).",
            ["rpc", "source", "target", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "translator_call_seconds",
            "Time spent in a translator RPC (for streams: in translation, not waiting for input).",
            ["rpc"],
            registry=registry,
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )
        self.stream_bytes = Counter(
            "translator_stream_bytes",
            "Stream bytes received from providers (in) and sent towards clients (out).",
            ["direction"],
            registry=registry,
        )

        self._child = LabelledChildren().of  # every call counts and times itself: children looked up once

    def observe(self, rpc: str, source: str, target: str, outcome: str, seconds: float) -> None:
        """One call: its count by RPC, format pair (names) and outcome, and its time."""
        self._child(self.calls, rpc, source, target, outcome).inc()
        self._child(self.seconds, rpc).observe(seconds)

    def stream(self, received: int, sent: int) -> None:
        """One translated stream's bytes in (from the provider) and out (towards the client)."""
        self._child(self.stream_bytes, "in").inc(received)
        self._child(self.stream_bytes, "out").inc(sent)
