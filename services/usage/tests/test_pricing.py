"""Prices and cost: the formula table-driven, lookups of dated and prefixed models, the shipped file's sanity,
overrides through gRPC applied to events stored afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TYPE_CHECKING

import grpc
import pytest

from omniroute.v1 import usage_pb2, usage_pb2_grpc
from omniroute_core import grpcx, jsonx
from omniroute_usage.pricing import Price, PriceBook, event_cost, load_shipped
from omniroute_usage.pricing_db import PricingSource
from omniroute_usage.server import SERVICE_NAME, UsageServicer
from omniroute_usage.store import UsageStore

if TYPE_CHECKING:
    from omniroute.v1.usage_pb2_grpc import UsageServiceAsyncStub

D = Decimal
FULL = Price(D(3), D(15), cached_input=D("0.3"), cache_creation=D("3.75"), reasoning=D(20))
BARE = Price(D(2), D(8))

# (case, price, input, output, cached, creation, reasoning, expected USD)
COST_CASES: list[tuple[str, Price | None, int, int, int, int, int, str]] = [
    ("plain input and output", BARE, 1_000_000, 1_000_000, 0, 0, 0, "10"),
    ("cached tokens leave the input count", FULL, 1_000_000, 0, 400_000, 0, 0, "1.92"),  # 0.6*3 + 0.4*0.3
    ("cache creation at its own rate", FULL, 1_000_000, 0, 0, 200_000, 0, "3.15"),  # 0.8*3 + 0.2*3.75
    ("reasoning at its own rate", FULL, 0, 1_000_000, 0, 0, 250_000, "16.25"),  # 0.75*15 + 0.25*20
    ("no cached rate: cached at the input rate", BARE, 1_000_000, 0, 500_000, 0, 0, "2"),
    ("no reasoning rate: reasoning at the output rate", BARE, 0, 1_000_000, 0, 0, 300_000, "8"),
    ("everything at once", FULL, 2_000, 1_000, 500, 100, 200, "0.020725"),
    ("unpriced model costs nothing", None, 1_000, 1_000, 0, 0, 0, "0"),
    ("a single token keeps its fraction of a cent", BARE, 1, 0, 0, 0, 0, "0.000002"),
]


@pytest.mark.parametrize(
    ("price", "input_tokens", "output", "cached", "creation", "reasoning", "expected"),
    [case[1:] for case in COST_CASES],
    ids=[case[0] for case in COST_CASES],
)
def test_event_cost(
    price: Price | None, input_tokens: int, output: int, cached: int, creation: int, reasoning: int, expected: str
) -> None:
    cost = event_cost(
        price,
        input_tokens=input_tokens,
        output_tokens=output,
        cached_input_tokens=cached,
        cache_creation_tokens=creation,
        reasoning_tokens=reasoning,
    )
    assert cost == D(expected)


def test_more_cached_than_input_bills_the_input_as_cached() -> None:
    # 100 input tokens, all cached (the provider over-reported 500): 100 * 2 / 1M at the input fallback rate
    assert event_cost(BARE, input_tokens=100, output_tokens=0, cached_input_tokens=500) == D("0.0002")


@pytest.mark.parametrize(
    ("provider", "model", "family"),
    [
        ("openai", "gpt-4o-2024-08-06", ("openai", "gpt-4o")),
        ("openai", "gpt-4o-mini-2024-07-18", ("openai", "gpt-4o-mini")),
        ("anthropic", "claude-sonnet-4-5-20250929", ("anthropic", "claude-sonnet-4-5")),
        ("anthropic", "Claude-3-5-Haiku-Latest", ("anthropic", "claude-3-5-haiku")),
        ("my-openai-proxy", "gpt-4.1", ("openai", "gpt-4.1")),
        ("groq", "openai/gpt-oss-120b", ("groq", "openai/gpt-oss-120b")),
        ("openrouter", "anthropic/claude-opus-4-1", ("anthropic", "claude-opus-4-1")),
        ("gemini", "models/gemini-2.5-flash", ("gemini", "gemini-2.5-flash")),
    ],
)
def test_lookup_finds_the_model_family(provider: str, model: str, family: tuple[str, str]) -> None:
    shipped = load_shipped()
    assert PriceBook(shipped, {}).lookup(provider, model) == shipped[family]


def test_unknown_model_is_unpriced_and_overrides_win() -> None:
    shipped = load_shipped()
    assert PriceBook(shipped, {}).lookup("acme", "mystery-model") is None
    special = Price(D(1), D(1))
    any_provider = Price(D(9), D(9))
    book = PriceBook(shipped, {("openai", "gpt-4o"): special, ("", "mystery-model"): any_provider})
    assert book.lookup("openai", "gpt-4o-2024-08-06") == special
    assert book.lookup("azure", "gpt-4o") == shipped[("openai", "gpt-4o")]
    assert book.lookup("acme", "mystery-model") == any_provider


def test_shipped_file_covers_every_provider_with_sane_rates() -> None:
    shipped = load_shipped()
    providers = {p for p, _ in shipped}
    assert {"openai", "anthropic", "gemini", "mistral", "groq", "deepseek", "xai"} <= providers
    for (provider, model), price in shipped.items():
        assert price.input >= 0 and price.output >= 0, (provider, model)
        if price.cached_input is not None:
            assert price.cached_input <= price.input, (provider, model)


@pytest.fixture
async def stub(store: UsageStore) -> AsyncIterator[UsageServiceAsyncStub]:
    server = grpcx.Server("127.0.0.1:0", [SERVICE_NAME])
    pricing = PricingSource(store.pool, load_shipped(), refresh_s=0)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageServicer(store, pricing), server.server)
    await server.start()
    try:
        async with grpcx.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield usage_pb2_grpc.UsageServiceStub(channel)
    finally:
        await server.stop(0)


def _put(body: object) -> usage_pb2.ManageRequest:
    return usage_pb2.ManageRequest(body_json=jsonx.dumps(body))


async def test_get_pricing_lists_shipped_prices(stub: UsageServiceAsyncStub) -> None:
    reply = jsonx.loads((await stub.GetPricing(usage_pb2.ManageRequest())).body_json)
    assert reply["unit"] == "USD per 1M tokens"
    assert reply["date"] and reply["source"]
    assert reply["pricing"]["openai"]["gpt-4o"] == {
        "input": 2.5,
        "output": 10.0,
        "cachedInput": 1.25,
        "cacheCreation": None,
        "reasoning": None,
        "source": "default",
    }


async def test_an_override_is_listed_and_prices_new_events(store: UsageStore, stub: UsageServiceAsyncStub) -> None:
    reply = await stub.SetPricing(_put({"model": "GPT-4o", "provider": "openai", "input": 1, "output": 2}))
    assert jsonx.loads(reply.body_json) == {
        "success": True,
        "provider": "openai",
        "model": "gpt-4o",
        "price": {
            "input": 1.0,
            "output": 2.0,
            "cachedInput": None,
            "cacheCreation": None,
            "reasoning": None,
            "source": "override",
        },
    }
    await stub.SetPricing(_put({"model": "house-model", "input": 0.5, "output": 0.5, "reasoning": 4}))
    table = jsonx.loads((await stub.GetPricing(usage_pb2.ManageRequest())).body_json)["pricing"]
    assert table["openai"]["gpt-4o"]["input"] == 1.0
    assert table["openai"]["gpt-4o"]["source"] == "override"
    assert table["*"]["house-model"]["reasoning"] == 4.0

    source = PricingSource(store.pool, load_shipped(), refresh_s=0)
    book = await source.book()
    assert book.lookup("openai", "gpt-4o-2024-08-06") == Price(D(1), D(2))
    assert book.cost("openai", "gpt-4o-2024-08-06", input_tokens=1_000_000, output_tokens=1_000_000) == D(3)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 1, "output": 1}, "model"),
        ({"model": "", "input": 1, "output": 1}, "model"),
        ({"model": "m", "output": 1}, "input"),
        ({"model": "m", "input": -1, "output": 1}, "input"),
        ({"model": "m", "input": 1, "output": "2"}, "output"),
        ({"model": "m", "input": 1, "output": 1, "cachedInput": True}, "cachedInput"),
        ([1, 2], "JSON object"),
    ],
)
async def test_invalid_overrides_are_rejected(stub: UsageServiceAsyncStub, body: object, param: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SetPricing(_put(body))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert param in (err.value.details() or "")


async def test_malformed_body_is_invalid(stub: UsageServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SetPricing(usage_pb2.ManageRequest(body_json=b"{nope"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
