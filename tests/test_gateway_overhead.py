"""The gateway overhead histograms on the edge's /metrics: the edge's time minus the provider's, for a fake
provider with a known delay. The delay is a lower bound on the provider's share; nothing here judges speed."""

from __future__ import annotations

import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from omniroute_core import jsonx
from omniroute_devservers.control import config_synced, make_key, until_ok
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

ROUTE = "/v1/chat/completions"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(suite: Suite) -> Samples:
    port = suite.procs["edge"].env["METRICS_PORT"]
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def observed_after(suite: Suite, before: Samples, name: str, **labels: str) -> Samples:
    """The metrics once ``name``'s count has grown by exactly one (the edge observes after the last byte)."""
    result: list[Samples] = []

    async def grown() -> None:
        now = await scrape(suite)
        assert value(now, name + "_count", **labels) == value(before, name + "_count", **labels) + 1
        result.append(now)

    await until_ok(grown, timeout=5)
    return result[-1]


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture(scope="module")
async def key(admin: httpx.AsyncClient, suite: Suite, fake_openai: FakeOpenAI) -> str:
    _, key = await make_key(admin)
    await config_synced(admin, [suite.edge_url])
    return key


def chat_body(stream: bool) -> dict[str, object]:
    # no temperature: not cacheable, so every request reaches the provider
    return {"model": "openai/gpt-4o", "stream": stream, "messages": [{"role": "user", "content": uuid.uuid4().hex}]}


async def test_a_reply_observes_its_overhead_without_the_providers_delay(
    suite: Suite, fake_openai: FakeOpenAI, key: str
) -> None:
    delay = 0.3
    before = await scrape(suite)
    fake_openai.script.append(Reply(json=fake_openai.completion("gpt-4o"), delay_s=delay))
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            suite.edge_url + ROUTE, json=chat_body(False), headers={"Authorization": f"Bearer {key}"}
        )
    assert resp.status_code == 200, resp.text
    after = await observed_after(suite, before, "omniroute_gateway_overhead_seconds", route=ROUTE, stream="false")
    overhead = delta(after, before, "omniroute_gateway_overhead_seconds_sum", route=ROUTE, stream="false")
    total = delta(after, before, "omniroute_edge_request_duration_seconds_sum", route=ROUTE)
    assert overhead >= 0
    assert total - overhead >= delay  # what was subtracted is the provider's time, at least its delay


async def test_a_stream_observes_its_overhead_and_its_first_byte_overhead(
    suite: Suite, fake_openai: FakeOpenAI, key: str
) -> None:
    first_delay, chunk_delay = 0.2, 0.05
    events = fake_openai.chunks("gpt-4o", include_usage=True)
    before = await scrape(suite)
    fake_openai.script.append(Reply(events=events, delay_s=first_delay, chunk_delay_s=chunk_delay))
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(suite.edge_url + ROUTE, json=chat_body(True), headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    assert resp.content.endswith(b"data: [DONE]\n\n")
    after = await observed_after(suite, before, "omniroute_gateway_overhead_seconds", route=ROUTE, stream="true")
    overhead = delta(after, before, "omniroute_gateway_overhead_seconds_sum", route=ROUTE, stream="true")
    total = delta(after, before, "omniroute_edge_request_duration_seconds_sum", route=ROUTE)
    assert overhead >= 0
    assert total - overhead >= first_delay + (len(events) - 1) * chunk_delay
    name = "omniroute_gateway_first_byte_overhead_seconds"
    assert delta(after, before, name + "_count", route=ROUTE) == 1
    first_byte = delta(after, before, name + "_sum", route=ROUTE)
    # the edge's first byte left at least (events - 1) chunk delays before its last one
    assert 0 <= first_byte <= total - (len(events) - 1) * chunk_delay


async def test_refusals_that_never_reach_the_executor_are_not_observed(suite: Suite, key: str) -> None:
    before = await scrape(suite)
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            suite.edge_url + ROUTE, content=jsonx.dumps({"messages": []}), headers={"Authorization": f"Bearer {key}"}
        )
    assert resp.status_code == 400
    after = await scrape(suite)
    for stream in ("true", "false"):
        assert delta(after, before, "omniroute_gateway_overhead_seconds_count", route=ROUTE, stream=stream) == 0
