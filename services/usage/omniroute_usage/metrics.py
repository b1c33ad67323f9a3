"""Prometheus metrics of the usage writer, registered on the registry built in ``main()``: the writer's own
health, and per provider/model GenAI metrics (OpenTelemetry names) and cost from the events it stores."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["GenAiMetrics", "Observed", "WriterMetrics"]

# batch inserts run from ~1 ms (one row) to ~15 ms (500 rows) when healthy; the tail shows a struggling database
_INSERT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class WriterMetrics:
    """The writer's counters and histogram; build one per registry with :meth:`create`."""

    stored: Counter
    duplicates: Counter
    invalid: Counter
    batches: Counter
    failures: Counter
    insert_seconds: Histogram
    budget_warnings: Counter
    genai: GenAiMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WriterMetrics:
        return cls(
            stored=Counter(
                "omniroute_usage_events_stored", "Usage events newly stored in PostgreSQL.", registry=registry
            ),
            duplicates=Counter(
                "omniroute_usage_events_duplicate",
                "Usage events skipped because their event id was already stored (redeliveries, re-publishes).",
                registry=registry,
            ),
            invalid=Counter(
                "omniroute_usage_events_invalid",
                "Messages terminated without storing: undecodable, or rejected by PostgreSQL as data.",
                registry=registry,
            ),
            batches=Counter(
                "omniroute_usage_batches", "Batches committed to PostgreSQL and acknowledged.", registry=registry
            ),
            failures=Counter(
                "omniroute_usage_batch_failures",
                "Batch inserts that failed (each retry counts); the messages stay unacknowledged.",
                registry=registry,
            ),
            insert_seconds=Histogram(
                "omniroute_usage_batch_insert_seconds",
                "Time to store one batch in PostgreSQL (successful inserts only).",
                buckets=_INSERT_BUCKETS,
                registry=registry,
            ),
            budget_warnings=Counter(
                "omniroute_budget_warnings",
                "Budget warnings sent (a key's spend reached the warning share of its limit), per period kind.",
                ["period"],
                registry=registry,
            ),
            genai=GenAiMetrics.create(registry),
        )


# OpenTelemetry GenAI semantic-convention buckets (token usage, request duration, time to first token)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_MODEL = ("gen_ai_provider_name", "gen_ai_request_model")


@dataclass(frozen=True, slots=True)
class Observed:
    """What the GenAI metrics need of one stored event."""

    provider: str
    model: str
    failed: bool
    latency_ms: int
    ttft_ms: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class GenAiMetrics:
    """Per provider and model, from the events the writer stored (each counted once, duplicates never), under the
    OpenTelemetry GenAI names as Prometheus spells them, plus the cost and request counters."""

    token_usage: Histogram
    request_duration: Histogram
    time_to_first_token: Histogram
    cost: Counter
    requests: Counter
    # each (provider, model)'s labelled children, resolved once: labels() costs more than the observations
    _children: dict[tuple[str, str], _Children] = field(default_factory=dict)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> GenAiMetrics:
        return cls(
            token_usage=Histogram(
                "gen_ai_client_token_usage",
                "Tokens per request attempt, by token type (input, output).",
                [*_MODEL, "gen_ai_token_type"],
                buckets=_TOKEN_BUCKETS,
                registry=registry,
            ),
            request_duration=Histogram(
                "gen_ai_server_request_duration_seconds",
                "Provider request duration per attempt, in seconds.",
                [*_MODEL, "error_type"],
                buckets=_DURATION_BUCKETS,
                registry=registry,
            ),
            time_to_first_token=Histogram(
                "gen_ai_server_time_to_first_token_seconds",
                "Time to the first output token of streamed attempts that reported one, in seconds.",
                list(_MODEL),
                buckets=_TTFT_BUCKETS,
                registry=registry,
            ),
            cost=Counter(
                "omniroute_usage_cost_usd", "Cost of stored usage events, in USD.", list(_MODEL), registry=registry
            ),
            requests=Counter(
                "omniroute_usage_requests",
                "Stored usage events (attempts) by outcome.",
                [*_MODEL, "outcome"],
                registry=registry,
            ),
        )

    def record(self, observed: Iterable[Observed]) -> None:
        """Add the given events: label lookups once per provider and model, and each histogram child's buckets
        counted per call (:func:`_observe_all`), not once per event."""
        groups: dict[tuple[str, str], list[Observed]] = {}
        for o in observed:
            groups.setdefault((o.provider or "unknown", o.model or "unknown"), []).append(o)
        for key, items in groups.items():
            c = self._children.get(key) or self._resolve(key)
            ok = [o.latency_ms / 1000 for o in items if not o.failed]
            failed = len(items) - len(ok)
            _observe_all(c.tokens_in, [o.input_tokens for o in items])
            _observe_all(c.tokens_out, [o.output_tokens for o in items])
            _observe_all(c.duration_ok, ok)
            _observe_all(c.ttft, [o.ttft_ms / 1000 for o in items if o.ttft_ms > 0])
            c.cost.inc(sum(o.cost_usd for o in items))
            # the outcome series appear with their first event, as before (an error series only if there is one)
            if failed:
                errors = [o.latency_ms / 1000 for o in items if o.failed]
                _observe_all(self.request_duration.labels(*key, "error"), errors)
                self.requests.labels(*key, "error").inc(failed)
            if len(items) > failed:
                self.requests.labels(*key, "success").inc(len(items) - failed)

    def _resolve(self, key: tuple[str, str]) -> _Children:
        provider, model = key
        self._children[key] = found = _Children(
            tokens_in=self.token_usage.labels(provider, model, "input"),
            tokens_out=self.token_usage.labels(provider, model, "output"),
            duration_ok=self.request_duration.labels(provider, model, ""),
            ttft=self.time_to_first_token.labels(provider, model),
            cost=self.cost.labels(provider, model),
        )
        return found


@dataclass(frozen=True, slots=True)
class _Children:
    tokens_in: Histogram
    tokens_out: Histogram
    duration_ok: Histogram
    ttft: Histogram
    cost: Counter


def _observe_all(child: Histogram, values: Sequence[float]) -> None:
    """``child.observe(v)`` for each of ``values``, with one increment per bucket and one of the sum: a lone
    ``observe`` takes a lock and walks the bounds, ~5 µs, and the writer makes four per stored event. Reads the
    child's ``_upper_bounds``, ``_buckets`` and ``_sum`` (prometheus_client internals, checked against
    ``observe`` by ``tests/test_metrics.py``)."""
    if not values:
        return
    bounds = child._upper_bounds
    counts = [0] * len(bounds)
    for v in values:
        counts[bisect_left(bounds, v)] += 1  # the first bound >= v, as observe(); the last bound is +Inf
    for bucket, n in zip(child._buckets, counts, strict=True):
        if n:
            bucket.inc(n)
    child._sum.inc(sum(values))
