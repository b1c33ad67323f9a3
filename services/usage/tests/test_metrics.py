"""The GenAI metrics (OpenTelemetry names) and cost counters, fed by the events the writer stores."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, generate_latest

from omniroute_usage.metrics import WriterMetrics
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
