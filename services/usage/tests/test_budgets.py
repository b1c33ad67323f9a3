"""Rollups kept in step with the events, budgets over gRPC (status, validation, the edge's check) and the 80%
warning observed on NATS, exactly once per period."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry

from omniroute.v1 import common_pb2, usage_pb2, usage_pb2_grpc
from omniroute_core import grpcx, jsonx
from omniroute_core.events import BUDGET_STATE_SUBJECT
from omniroute_usage.budget_api import post_budget
from omniroute_usage.budgets import WARNING_SUBJECT, BudgetWarner
from omniroute_usage.metrics import WriterMetrics
from omniroute_usage.server import SERVICE_NAME, UsageServicer
from omniroute_usage.store import UsageStore, event_row
from omniroute_usage.testing import Lane, eventually, make_event, publish, start_writer

if TYPE_CHECKING:
    from omniroute.v1.usage_pb2_grpc import UsageServiceAsyncStub

NOW = dt.datetime.now(dt.UTC)


def _event(provider: str, n: int, key_id: str, input_tokens: int, **fields: object) -> usage_pb2.UsageEvent:
    event = make_event(provider, n, key_id=key_id, ts_unix_ms=int(time.time() * 1000), **fields)
    event.usage.CopyFrom(common_pb2.Usage(input_tokens=input_tokens, total_tokens=input_tokens))
    return event


async def test_rollups_hold_exactly_the_new_events(store: UsageStore, pool: asyncpg.Pool) -> None:
    events = [make_event("openai", n, status=500 if n == 3 else 200) for n in range(5)]
    rows = [event_row(e, e.event_id, NOW, Decimal("0.5")) for e in events]
    assert len(await store.insert_batch(rows[:3])) == 3
    assert len(await store.insert_batch(rows)) == 2  # three already stored: they must not count twice
    for grain in ("minute", "hour", "day"):
        got = await pool.fetchrow(
            f"SELECT sum(requests) AS r, sum(errors) AS e, sum(input_tokens) AS i, sum(cost_usd) AS c "
            f"FROM usage_rollup_{grain}"
        )
        assert got is not None
        assert (got["r"], got["e"], got["i"], got["c"]) == (5, 1, sum(100 + n for n in range(5)), Decimal("2.5"))


@pytest.fixture
async def stub(store: UsageStore) -> AsyncIterator[UsageServiceAsyncStub]:
    server = grpcx.Server("127.0.0.1:0", [SERVICE_NAME])
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageServicer(store), server.server)
    await server.start()
    try:
        async with grpcx.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield usage_pb2_grpc.UsageServiceStub(channel)
    finally:
        await server.stop(0)


def _body(doc: object) -> usage_pb2.ManageRequest:
    return usage_pb2.ManageRequest(body_json=jsonx.dumps(doc))


async def test_budget_status_and_check(store: UsageStore, stub: UsageServiceAsyncStub) -> None:
    assert await stub.CheckBudget(usage_pb2.CheckBudgetRequest(key_id="k1")) == usage_pb2.CheckBudgetReply(
        allowed=True, has_budget=False
    )
    set_reply = jsonx.loads((await stub.SetBudget(_body({"keyId": "k1", "limit": 10, "period": "daily"}))).body_json)
    assert set_reply["success"] is True
    assert set_reply["budget"]["spent"] == 0.0
    await stub.SetBudget(_body({"keyId": "k2", "limit": 1.5, "period": "monthly"}))
    rows = [
        event_row(e, e.event_id, NOW, Decimal(4))
        for e in (_event("openai", 0, "k1", 10), _event("openai", 1, "k1", 10), _event("openai", 2, "other", 10))
    ]
    await store.insert_batch(rows)

    status = jsonx.loads((await stub.GetBudgets(usage_pb2.ManageRequest())).body_json)
    assert status["total"] == 2
    k1 = status["budgets"][0]
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert k1 == {
        "keyId": "k1",
        "limit": 10.0,
        "period": "daily",
        "spent": 8.0,
        "remaining": 2.0,
        "percentUsed": 80.0,
        "periodStart": today.isoformat(),
        "resetAt": (today + dt.timedelta(days=1)).isoformat(),
        "warning": True,
        "exceeded": False,
    }
    assert status["budgets"][1]["keyId"] == "k2"
    assert dt.datetime.fromisoformat(status["budgets"][1]["periodStart"]).day == 1

    check = await stub.CheckBudget(usage_pb2.CheckBudgetRequest(key_id="k1"))
    assert (check.allowed, check.has_budget, check.limit_usd, check.spent_usd, check.remaining_usd) == (
        True,
        True,
        10.0,
        8.0,
        2.0,
    )
    assert check.reset_at_unix_ms == int((today + dt.timedelta(days=1)).timestamp() * 1000)
    await store.insert_batch([event_row(_event("openai", 9, "k1", 1), "ev-more", NOW, Decimal(3))])
    over = await stub.CheckBudget(usage_pb2.CheckBudgetRequest(key_id="k1"))
    assert (over.allowed, over.remaining_usd) == (False, 0.0)


async def test_weekly_budget_starts_on_monday(stub: UsageServiceAsyncStub) -> None:
    reply = jsonx.loads((await stub.SetBudget(_body({"keyId": "w", "limit": 1, "period": "weekly"}))).body_json)
    start = dt.datetime.fromisoformat(reply["budget"]["periodStart"])
    assert start.weekday() == 0
    assert dt.datetime.fromisoformat(reply["budget"]["resetAt"]) - start == dt.timedelta(days=7)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"limit": 1, "period": "daily"}, "keyId"),
        ({"keyId": "", "limit": 1, "period": "daily"}, "keyId"),
        ({"keyId": "k", "period": "daily"}, "limit"),
        ({"keyId": "k", "limit": "5", "period": "daily"}, "limit"),
        ({"keyId": "k", "limit": -1, "period": "daily"}, "limit"),
        ({"keyId": "k", "limit": 1, "period": "yearly"}, "period"),
        ("not an object", "JSON object"),
    ],
)
async def test_invalid_budgets_are_rejected(stub: UsageServiceAsyncStub, body: object, param: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SetBudget(_body(body))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert param in (err.value.details() or "")


async def test_check_budget_needs_a_key(stub: UsageServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CheckBudget(usage_pb2.CheckBudgetRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_warning_at_80_percent_is_published_once(
    nc: NATS, js: JetStreamContext, store: UsageStore, pool: asyncpg.Pool, lane: Lane
) -> None:
    received: list[Msg] = []

    async def collect(msg: Msg) -> None:
        received.append(msg)

    sub = await nc.subscribe(WARNING_SUBJECT, cb=collect)
    metrics = WriterMetrics.create(CollectorRegistry())
    warner = BudgetWarner(pool, nc.publish, metrics.budget_warnings)
    key = f"key-{lane.provider}"
    await post_budget(pool, jsonx.dumps({"keyId": key, "limit": 0.01, "period": "monthly"}), 0.8)
    writer, task = await start_writer(js, store, lane, metrics, budgets=warner)
    try:
        # gpt-4o input at 2.50 USD per million: 1000 tokens cost 0.0025, so the 4th event reaches 80% of 0.01
        for n in range(3):
            await publish(js, lane, _event(lane.provider, n, key, 1000, model="gpt-4o"))
        await eventually(lambda: _spent_at_least(pool, key, Decimal("0.0075")))
        await asyncio.sleep(0.2)
        assert received == []
        for n in range(3, 6):
            await publish(js, lane, _event(lane.provider, n, key, 1000, model="gpt-4o"))

        async def warned() -> bool:
            return len(received) >= 1

        await eventually(warned)
        await eventually(lambda: _spent_at_least(pool, key, Decimal("0.015")))
        await asyncio.sleep(0.3)
    finally:
        writer.stop()
        await asyncio.wait_for(task, 10)
        await sub.unsubscribe()
    assert len(received) == 1  # past 100% later in the same period: no second warning
    warning = jsonx.loads(received[0].data)
    assert warning["keyId"] == key
    assert warning["limit"] == 0.01
    assert warning["spent"] >= 0.008
    assert warning["ratio"] >= 0.8
    assert warning["period"] == "monthly"
    assert metrics.budget_warnings.labels("monthly")._value.get() == 1


async def _spent_at_least(pool: asyncpg.Pool, key: str, amount: Decimal) -> bool:
    spent = await pool.fetchval("SELECT coalesce(sum(cost_usd), 0) FROM usage_rollup_day WHERE key_id = $1", key)
    return bool(spent >= amount)


async def test_keys_over_their_limit_and_changed_budgets_are_announced(
    nc: NATS, js: JetStreamContext, store: UsageStore, pool: asyncpg.Pool, lane: Lane
) -> None:
    received: list[dict[str, Any]] = []

    async def collect(msg: Msg) -> None:
        received.append(jsonx.loads(msg.data))

    sub = await nc.subscribe(BUDGET_STATE_SUBJECT, cb=collect)
    metrics = WriterMetrics.create(CollectorRegistry())
    warner = BudgetWarner(pool, nc.publish, metrics.budget_warnings)
    key, idle = f"key-{lane.provider}", f"idle-{lane.provider}"
    await post_budget(pool, jsonx.dumps({"keyId": key, "limit": 0.005, "period": "daily"}), 0.8)
    await post_budget(pool, jsonx.dumps({"keyId": idle, "limit": 100, "period": "daily"}), 0.8)
    writer, task = await start_writer(js, store, lane, metrics, budgets=warner)
    try:
        # 1000 gpt-4o input tokens cost 0.0025: the first event stays under the limit, the second reaches it
        await publish(js, lane, _event(lane.provider, 0, key, 1000, model="gpt-4o"))
        await publish(js, lane, _event(lane.provider, 1, idle, 1000, model="gpt-4o"))
        await eventually(lambda: _spent_at_least(pool, key, Decimal("0.0025")))
        await asyncio.sleep(0.3)
        assert received == []
        await publish(js, lane, _event(lane.provider, 2, key, 1000, model="gpt-4o"))

        async def announced() -> bool:
            return {"keyId": key, "state": "exceeded"} in received

        await eventually(announced)
        # every later batch of an exhausted key is announced again (a lost notice must not stick)
        await publish(js, lane, _event(lane.provider, 3, key, 1000, model="gpt-4o"))

        async def again() -> bool:
            return received.count({"keyId": key, "state": "exceeded"}) >= 2

        await eventually(again)
        await warner.announce(idle, "updated")

        async def updated() -> bool:
            return {"keyId": idle, "state": "updated"} in received

        await eventually(updated)
    finally:
        writer.stop()
        await asyncio.wait_for(task, 10)
        await sub.unsubscribe()
    assert all(r["keyId"] == key or r["state"] == "updated" for r in received)


async def test_setting_a_budget_over_grpc_announces_it(nc: NATS, store: UsageStore, pool: asyncpg.Pool) -> None:
    received: list[dict[str, Any]] = []

    async def collect(msg: Msg) -> None:
        received.append(jsonx.loads(msg.data))

    sub = await nc.subscribe(BUDGET_STATE_SUBJECT, cb=collect)
    warner = BudgetWarner(pool, nc.publish, WriterMetrics.create(CollectorRegistry()).budget_warnings)
    server = grpcx.Server("127.0.0.1:0", [SERVICE_NAME])
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageServicer(store, budgets=warner), server.server)
    await server.start()
    try:
        async with grpcx.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = usage_pb2_grpc.UsageServiceStub(channel)
            await stub.SetBudget(_body({"keyId": "announced", "limit": 3, "period": "weekly"}))
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.SetBudget(_body({"keyId": "refused", "limit": -1, "period": "weekly"}))

            async def announced() -> bool:
                return received == [{"keyId": "announced", "state": "updated"}]

            await eventually(announced)
    finally:
        await server.stop(0)
        await sub.unsubscribe()
