"""Prometheus metrics of the usage writer, registered on the registry built in ``main()``."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["WriterMetrics"]

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
        )
