"""GetKeyUsage over real gRPC on a free port, answered from PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omniroute.v1 import common_pb2, usage_pb2, usage_pb2_grpc
from omniroute_core import grpcx
from omniroute_usage.server import SERVICE_NAME, UsageServicer
from omniroute_usage.store import UsageStore, event_row
from omniroute_usage.testing import make_event

if TYPE_CHECKING:
    from omniroute.v1.usage_pb2_grpc import UsageServiceAsyncStub

T0 = 1_760_000_000_000


@pytest.fixture
async def stub(store: UsageStore) -> AsyncIterator[UsageServiceAsyncStub]:
    server = grpcx.Server("127.0.0.1:0", [SERVICE_NAME])
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageServicer(store), server.server)
    await server.start()
    try:
        async with grpcx.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME)
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            yield usage_pb2_grpc.UsageServiceStub(channel)
    finally:
        await server.stop(0)


async def _seed(store: UsageStore) -> None:
    now = dt.datetime.now(dt.UTC)
    events = [
        make_event("openai", 0, key_id="k1", ts_unix_ms=T0 - 1),  # before the window
        make_event("openai", 1, key_id="k1", ts_unix_ms=T0),
        make_event("anthropic", 2, key_id="k1", ts_unix_ms=T0 + 5, request_id="shared"),
        make_event("openai", 3, key_id="k1", ts_unix_ms=T0 + 6, request_id="shared", status=502),
        make_event("openai", 4, key_id="k2", ts_unix_ms=T0 + 7),
    ]
    await store.insert_events([event_row(e, e.event_id, now) for e in events])


async def test_key_usage_sums_events_since_the_given_time(store: UsageStore, stub: UsageServiceAsyncStub) -> None:
    await _seed(store)
    reply = await stub.GetKeyUsage(usage_pb2.KeyUsageRequest(key_id="k1", since_unix_ms=T0))
    assert reply == usage_pb2.KeyUsageReply(
        requests=2,  # the two attempts sharing a request id are one request
        usage=common_pb2.Usage(
            input_tokens=101 + 102 + 103,
            output_tokens=150,
            cached_input_tokens=60,
            cache_creation_tokens=15,
            reasoning_tokens=21,
            total_tokens=151 + 152 + 153,
        ),
    )
    everything = await stub.GetKeyUsage(usage_pb2.KeyUsageRequest(key_id="k1"))
    assert everything.requests == 3
    assert everything.usage.input_tokens == 100 + 101 + 102 + 103


async def test_unknown_key_has_zero_usage(store: UsageStore, stub: UsageServiceAsyncStub) -> None:
    await _seed(store)
    reply = await stub.GetKeyUsage(usage_pb2.KeyUsageRequest(key_id="nobody", since_unix_ms=0))
    assert reply == usage_pb2.KeyUsageReply(requests=0, usage=common_pb2.Usage())
    far_future = await stub.GetKeyUsage(usage_pb2.KeyUsageRequest(key_id="k1", since_unix_ms=2**62))
    assert far_future.requests == 0


async def test_empty_key_is_invalid(stub: UsageServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetKeyUsage(usage_pb2.KeyUsageRequest(key_id=""))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
