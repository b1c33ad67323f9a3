"""The GenAI metrics (OpenTelemetry names) and cost counters, fed by the events the writer stores."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from omniroute_usage.metrics import GenAiMetrics, Observed, WriterMetrics
from omniroute_usage.store import UsageStore
from omniroute_usage.testing import Lane, count_rows, eventually, make_event, publish, start_writer


async def test_stored_events_feed_the_genai_metrics_once(
    js: JetStreamContext, store: UsageStore, db: str, lane: Lane
) -> None:
    registry = CollectorRegistry()
    metrics = WriterMetrics.create(registry)
    writer, task = await start_writer(js, store, lane, metrics)
    try:
        await publish(js, lane, make_event(lane.provider, 0, model="gpt-4o"))
        await publish(js, lane, make_event(lane.provider, 1, model="gpt-4o", status=502, error_type="upstream"))
        await publish(js, lane, make_event(lane.provider, 0, model="gpt-4o"), msg_id="again")  # a duplicate

        async def stored() -> bool:
            return await count_rows(db, lane.provider) == 2

        await eventually(stored)
        await asyncio.sleep(0.3)
    finally:
        writer.stop()
        await asyncio.wait_for(task, 10)

    def value(name: str, **labels: str) -> float:
        found = registry.get_sample_value(name, {"gen_ai_provider_name": lane.provider, **labels})
        assert found is not None, (name, labels)
        return found

    model = {"gen_ai_request_model": "gpt-4o"}
    assert value("gen_ai_client_token_usage_count", **model, gen_ai_token_type="input") == 2
    assert value("gen_ai_client_token_usage_sum", **model, gen_ai_token_type="input") == 100 + 101
    assert value("gen_ai_client_token_usage_sum", **model, gen_ai_token_type="output") == 100
    assert value("gen_ai_server_request_duration_seconds_count", **model, error_type="") == 1
    assert value("gen_ai_server_request_duration_seconds_count", **model, error_type="error") == 1
    assert value("gen_ai_server_request_duration_seconds_sum", **model, error_type="") == 1.234
    assert value("gen_ai_server_time_to_first_token_seconds_count", **model) == 2
    assert value("omniroute_usage_requests_total", **model, outcome="success") == 1
    assert value("omniroute_usage_requests_total", **model, outcome="error") == 1
    assert value("omniroute_usage_cost_usd_total", **model) > 0
    text = generate_latest(registry).decode()
    assert "gen_ai_server_time_to_first_token_seconds_bucket" in text


def test_record_matches_one_observe_per_event() -> None:
    # record() counts each histogram child's buckets itself (prometheus_client internals): the exposition must be
    # what one observe() per event gives, bucket by bucket, including the boundaries and the error series
    events = [
        Observed("openai", "gpt-4o", n % 7 == 3, latency, ttft, tokens, tokens // 2, 0.001 * n)
        for n, (latency, ttft, tokens) in enumerate(
            [(10, 0, 1), (20, 1, 4), (40, 5, 16), (999, 0, 17), (81920, 100, 0), (81921, 10000, 67108865)] * 3
        )
    ] + [Observed("", "", False, 5, 5, 3, 3, 0.0), Observed("anthropic", "claude", True, 7, 0, 2, 2, 0.5)]
    batched = GenAiMetrics.create(CollectorRegistry())
    batched.record(events[:9])
    batched.record(events[9:])
    reference = GenAiMetrics.create(CollectorRegistry())
    for o in events:
        labels = (o.provider or "unknown", o.model or "unknown")
        reference.token_usage.labels(*labels, "input").observe(o.input_tokens)
        reference.token_usage.labels(*labels, "output").observe(o.output_tokens)
        reference.request_duration.labels(*labels, "error" if o.failed else "").observe(o.latency_ms / 1000)
        reference.time_to_first_token.labels(*labels)  # created with the model's first event, as record() does
        if o.ttft_ms > 0:
            reference.time_to_first_token.labels(*labels).observe(o.ttft_ms / 1000)
        reference.cost.labels(*labels).inc(o.cost_usd)
        reference.requests.labels(*labels, "error" if o.failed else "success").inc()
    if not any(not o.failed for o in events if o.provider == "anthropic"):
        reference.request_duration.labels("anthropic", "claude", "")  # the success duration series exists too

    def samples(metrics: GenAiMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        found = {}
        families: list[Histogram | Counter] = [metrics.token_usage, metrics.request_duration, metrics.cost]
        for family in [*families, metrics.time_to_first_token, metrics.requests]:
            for metric in family.collect():
                for s in metric.samples:
                    if not s.name.endswith("_created"):
                        found[(s.name, tuple(sorted(s.labels.items())))] = round(s.value, 9)
        return found

    assert samples(batched) == samples(reference)
