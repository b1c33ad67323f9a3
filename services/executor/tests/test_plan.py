"""Attempt plans: combos by strategy, nested combos, account selection, blocked targets and config knobs."""

from __future__ import annotations

import random
from typing import Any

import pytest

from omniroute.v1 import translator_pb2
from omniroute_core.catalog import Catalog, load_catalog, parse_catalog
from omniroute_core.nodes import CustomModel, ProviderNode
from omniroute_core.snapshot import Combo, ComboStep, ConfigSnapshot, ProviderConnection
from omniroute_executor.resolve import ResolveError, Target
from omniroute_executor.routing import Plan, RouteConfig, RoutingStats, build_plan

CATALOG: Catalog = parse_catalog(
    {
        "providers": [
            {"id": "openai", "format": "openai", "baseUrl": "http://o", "models": ["gpt-4o"],
             "prices": {"gpt-4o": {"input": 2.5, "output": 10}}},
            {"id": "groq", "format": "openai", "baseUrl": "http://g", "models": ["llama"],
             "prices": {"llama": {"input": 0.5, "output": 0.8}}},
            {"id": "mistral", "format": "openai", "baseUrl": "http://m"},
        ]
    }
)  # fmt: skip


def conn(cid: str, provider: str, priority: int = 0, active: bool = True) -> ProviderConnection:
    return ProviderConnection(cid, provider, cid, "", "", priority=priority, is_active=active)


CONNS = (
    conn("o2", "openai", priority=2),
    conn("o1", "openai", priority=1),
    conn("o3", "openai", priority=3, active=False),
    conn("g1", "groq"),
)


def snap(
    *combos: Combo, settings: dict[str, Any] | None = None, conns: tuple[ProviderConnection, ...] = CONNS
) -> ConfigSnapshot:
    return ConfigSnapshot.build(1, conns, (), settings or {}, combos)


def combo(name: str, *steps: str | ComboStep, strategy: str = "priority", **config: Any) -> Combo:
    return Combo(name, name, strategy, tuple(s if isinstance(s, ComboStep) else ComboStep(s) for s in steps), config)


def plan(model: str, snapshot: ConfigSnapshot, *, stats: RoutingStats | None = None, blocked: set[str] = set()) -> Plan:  # noqa: B006
    return build_plan(
        model,
        CATALOG,
        snapshot,
        stats=stats or RoutingStats(),
        rng=random.Random(0),
        blocked_until=lambda t: 5000 if t.connection.id in blocked else 0,
    )


def names(p: Plan) -> list[str]:
    return [f"{t.connection.id}:{t.model}" for t in p.targets]


@pytest.mark.parametrize(
    ("model", "snapshot", "expected"),
    [
        ("openai/gpt-4o", snap(), ["o1:gpt-4o", "o2:gpt-4o"]),  # fill-first by priority, inactive left out
        ("gpt-4o", snap(), ["o1:gpt-4o", "o2:gpt-4o"]),  # catalog inference
        ("c", snap(combo("c", "groq/llama", "openai/gpt-4o")), ["g1:llama", "o1:gpt-4o", "o2:gpt-4o"]),
        (
            "c",
            snap(combo("c", "openai/gpt-4o", "groq/llama", strategy="cost-optimized")),
            ["g1:llama", "o1:gpt-4o", "o2:gpt-4o"],
        ),
        (
            "c",
            snap(combo("c", ComboStep("openai/gpt-4o", connection_id="o2"), "groq/llama")),
            ["o2:gpt-4o", "g1:llama"],
        ),
        (  # nested combos expand in place; duplicates keep their first position
            "outer",
            snap(combo("inner", "groq/llama", "openai/gpt-4o"), combo("outer", "openai/gpt-4o", "inner")),
            ["o1:gpt-4o", "o2:gpt-4o", "g1:llama"],
        ),
        (  # an unusable step (no connection for mistral) is skipped, not fatal
            "c",
            snap(combo("c", "mistral/large", "groq/llama")),
            ["g1:llama"],
        ),
        ("openai/gpt-4o", snap(settings={"routing": {"accountStrategy": "round-robin"}}), ["o1:gpt-4o", "o2:gpt-4o"]),
    ],
)
def test_plans(model: str, snapshot: ConfigSnapshot, expected: list[str]) -> None:
    assert names(plan(model, snapshot)) == expected


def test_combo_name_and_config_are_carried() -> None:
    p = plan("c", snap(combo("c", "groq/llama", maxRetries=2, retryDelayMs=50, timeoutMs=1500, maxAttempts=3)))
    assert p.combo == "c"
    assert p.config == RouteConfig(max_retries=2, retry_delay_s=0.05, timeout_s=1.5, max_attempts=3)
    direct = plan("groq/llama", snap(settings={"routing": {"maxRetries": 1, "fallbackDelayMs": 10}}))
    assert direct.combo == "" and direct.config.max_retries == 1 and direct.config.fallback_delay_s == 0.01


def test_settings_are_read_once_per_snapshot_and_afresh_from_the_next() -> None:
    first = snap(combo("c", "groq/llama", maxRetries=2), settings={"routing": {"maxRetries": 1}})
    assert plan("c", first).config is plan("c", first).config  # kept with the snapshot
    assert plan("groq/llama", first).config is plan("groq/llama", first).config
    assert (plan("c", first).config.max_retries, plan("groq/llama", first).config.max_retries) == (2, 1)
    second = snap(
        combo("c", "groq/llama", maxAttempts=4),
        settings={"routing": {"maxRetries": 3}, "systemPrompt": {"enabled": True, "prefixPrompt": "Be brief."}},
    )
    assert plan("c", second).config == RouteConfig(max_retries=3, max_attempts=4)
    assert plan("groq/llama", second).system_prompt.prefix == "Be brief."
    assert not plan("groq/llama", first).system_prompt.active


def test_round_robin_combo_and_accounts_rotate() -> None:
    stats = RoutingStats()
    snapshot = snap(combo("rr", "openai/gpt-4o", "groq/llama", strategy="round-robin"))
    assert [names(plan("rr", snapshot, stats=stats))[0] for _ in range(3)] == ["o1:gpt-4o", "g1:llama", "o1:gpt-4o"]
    accounts = snap(settings={"routing": {"accountStrategy": "round-robin"}})
    firsts = [names(plan("openai/gpt-4o", accounts, stats=stats))[0] for _ in range(3)]
    assert firsts == ["o1:gpt-4o", "o2:gpt-4o", "o1:gpt-4o"]


def test_a_providers_own_account_strategy_and_sticky_limit_win() -> None:
    stats = RoutingStats()
    routing = {"accountStrategy": "fill-first", "providers": {"openai": {"accountStrategy": "round-robin",
                                                                        "stickyLimit": 2}}}  # fmt: skip
    accounts = snap(settings={"routing": routing}, conns=(*CONNS, conn("g2", "groq", priority=1)))
    firsts = [names(plan("openai/gpt-4o", accounts, stats=stats))[0] for _ in range(5)]
    assert firsts == ["o1:gpt-4o", "o1:gpt-4o", "o2:gpt-4o", "o2:gpt-4o", "o1:gpt-4o"]
    # groq keeps the gateway-wide fill-first: its priority-0 account first every time
    assert {names(plan("groq/llama", accounts, stats=stats))[0] for _ in range(3)} == {"g1:llama"}
    assert names(plan("openai/gpt-4o", accounts, stats=stats)) == ["o1:gpt-4o", "o2:gpt-4o"]  # never drops one


def test_malformed_provider_overrides_are_ignored() -> None:
    routing = {"providers": {"openai": {"stickyLimit": 0, "accountStrategy": 3}, "groq": "round-robin"}}
    config = plan("openai/gpt-4o", snap(settings={"routing": routing})).config
    assert config.providers == {"openai": {}}


def test_latency_and_least_used_follow_the_stats() -> None:
    stats = RoutingStats()
    stats.latency_ms.update({"o1|gpt-4o": 400.0, "g1|llama": 90.0})
    p = plan("c", snap(combo("c", "openai/gpt-4o", "groq/llama", strategy="latency-optimized")), stats=stats)
    assert names(p)[0] == "g1:llama"
    stats.started.update({"o1|gpt-4o": 1, "o2|gpt-4o": 0})
    least = plan("openai/gpt-4o", snap(settings={"routing": {"accountStrategy": "least-used"}}), stats=stats)
    assert names(least) == ["o2:gpt-4o", "o1:gpt-4o"]


def test_blocked_targets_are_left_out_with_the_earliest_end() -> None:
    p = plan("c", snap(combo("c", "openai/gpt-4o", "groq/llama")), blocked={"o1"})
    assert names(p) == ["o2:gpt-4o", "g1:llama"] and p.blocked_until_ms == 5000
    none = plan("openai/gpt-4o", snap(), blocked={"o1", "o2"})
    assert none.targets == () and none.blocked_until_ms == 5000


@pytest.mark.parametrize(
    ("model", "snapshot", "status", "code"),
    [
        ("mistral/large", snap(), 400, "provider_not_configured"),
        ("nope/x", snap(), 404, "model_not_found"),
        ("c", snap(combo("c", "mistral/large")), 400, "provider_not_configured"),
        ("c", snap(combo("c", ComboStep("groq/llama", connection_id="o1"))), 400, "no_connection"),
        ("a", snap(combo("a", "b"), combo("b", "a")), 400, ""),
        ("a", snap(combo("a", "b"), combo("b", "c"), combo("c", "d"), combo("d", "groq/llama")), 400, ""),
    ],
)
def test_unservable(model: str, snapshot: ConfigSnapshot, status: int, code: str) -> None:
    with pytest.raises(ResolveError) as info:
        plan(model, snapshot)
    assert info.value.error.status == status and info.value.error.code == code


def test_target_key_and_base_url() -> None:
    t = Target(CATALOG.providers["openai"], CONNS[0], "gpt-4o")
    assert t.key == "o2|gpt-4o" and t.base_url == "http://o"


# -- aliases, provider nodes, custom models and the request settings (omniroute_core.resolution) ----------------

NODE = ProviderNode("node-1", "vllm", "Local", "openai-compatible", "chat", "http://v/v1", headers_enc="v1:sealed")


def routed(
    *combos: Combo,
    aliases: dict[str, str] | None = None,
    custom: tuple[CustomModel, ...] = (),
    settings: dict[str, Any] | None = None,
) -> ConfigSnapshot:
    conns = (*CONNS, conn("v1", "node-1"))
    return ConfigSnapshot.build(
        1, conns, (), settings or {}, combos, aliases=aliases, nodes=(NODE,), custom_models=custom
    )


@pytest.mark.parametrize(
    ("model", "snapshot", "expected", "combo_name"),
    [
        ("fast", routed(aliases={"fast": "groq/llama"}), ["g1:llama"], ""),
        ("best", routed(combo("team", "groq/llama", "fast"), aliases={"best": "team", "fast": "openai/gpt-4o"}),
         ["g1:llama", "o1:gpt-4o", "o2:gpt-4o"], "team"),
        ("vllm/qwen3-8b", routed(), ["v1:qwen3-8b"], ""),
        ("qwen3-8b", routed(custom=(CustomModel("node-1", "qwen3-8b"),)), ["v1:qwen3-8b"], ""),
        ("llama", routed(aliases={"llama": "vllm/llama-3"}), ["v1:llama-3"], ""),  # an alias beats inference
    ],
)  # fmt: skip
def test_plans_through_aliases_nodes_and_custom_models(
    model: str, snapshot: ConfigSnapshot, expected: list[str], combo_name: str
) -> None:
    p = plan(model, snapshot)
    assert names(p) == expected and p.combo == combo_name


def test_an_alias_to_a_combo_takes_the_combo_config_and_node_targets_carry_their_headers() -> None:
    p = plan("best", routed(combo("team", "vllm/q", maxRetries=2), aliases={"best": "team"}))
    assert p.config.max_retries == 2 and p.targets[0].secret_headers == "v1:sealed"


def test_cost_optimized_reads_custom_model_prices() -> None:
    cheap = (CustomModel("openai", "gpt-4o", prices={"input": 0.1, "output": 0.1}),)
    snapshot = routed(combo("c", "groq/llama", "openai/gpt-4o", strategy="cost-optimized"), custom=cheap)
    assert names(plan("c", snapshot))[0] == "o1:gpt-4o"


def test_request_policy_per_target() -> None:
    assert plan("openai/gpt-4o", routed()).policy_for(plan("openai/gpt-4o", routed()).targets[0]) is None
    settings = {
        "systemPrompt": {"prefixPrompt": "P", "suffixPrompt": "S"},
        "thinkingBudget": {"mode": "custom", "customBudget": 2048},
    }
    reasoning = (CustomModel("node-1", "r1", reasoning=True),)
    p = plan("c", routed(combo("c", "vllm/r1", "groq/llama"), custom=reasoning, settings=settings))
    first, second = (p.policy_for(t) for t in p.targets)
    assert first == translator_pb2.RequestPolicy(
        system_prefix="P", system_suffix="S", thinking_mode="custom", thinking_budget=2048, model_reasons=True
    )
    assert second is not None and not second.model_reasons
    prompt_off = {"systemPrompt": {"enabled": False, "prefixPrompt": "P"}, "thinkingBudget": {"mode": "auto"}}
    only_thinking = plan("groq/llama", routed(settings=prompt_off))
    assert only_thinking.policy_for(only_thinking.targets[0]) == translator_pb2.RequestPolicy(
        thinking_mode="auto", thinking_budget=10240
    )


def test_cost_optimized_ranks_with_the_shipped_price_book() -> None:
    shipped = load_catalog()
    conns = (conn("o1", "openai"), conn("c1", "cerebras"), conn("p1", "perplexity"))
    snapshot = snap(
        combo("c", "openai/gpt-4o", "perplexity/sonar-pro", "cerebras/llama3.1-8b", strategy="cost-optimized"),
        conns=conns,
    )
    built = build_plan("c", shipped, snapshot, stats=RoutingStats(), rng=random.Random(0), blocked_until=lambda t: 0)
    assert names(built) == ["c1:llama3.1-8b", "o1:gpt-4o", "p1:sonar-pro"]  # 0.2, 12.5, 18 USD per 1M in+out


def count_expansions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The model strings build_plan expands from now on (the list grows as it does)."""
    from omniroute_executor.routing import plan as plan_module

    calls: list[str] = []
    real = plan_module.expand  # type: ignore[attr-defined]

    def counting(model: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(plan_module, "expand", counting)
    return calls


def test_a_model_with_one_possible_order_is_expanded_once_per_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_expansions(monkeypatch)
    snapshot = snap(combo("one", "groq/llama"))
    for _ in range(3):
        assert names(plan("groq/llama", snapshot)) == ["g1:llama"]
        assert names(plan("one", snapshot)) == ["g1:llama"]
    assert calls == ["groq/llama", "one"]  # one account, one step: no strategy had a choice to make
    # blocked targets are still decided per request, on the reused expansion
    assert plan("groq/llama", snapshot, blocked={"g1"}).targets == ()
    # a new snapshot expands afresh
    assert names(plan("groq/llama", snap(combo("one", "groq/llama")))) == ["g1:llama"]
    assert calls == ["groq/llama", "one", "groq/llama"]


def test_models_whose_order_is_chosen_are_expanded_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_expansions(monkeypatch)
    stats = RoutingStats()
    accounts = snap(settings={"routing": {"accountStrategy": "round-robin"}})  # two active openai accounts
    firsts = [names(plan("openai/gpt-4o", accounts, stats=stats))[0] for _ in range(4)]
    assert firsts == ["o1:gpt-4o", "o2:gpt-4o", "o1:gpt-4o", "o2:gpt-4o"]
    rr = snap(combo("rr", "groq/llama", "groq/llama"))  # two steps: the strategy orders them
    plan("rr", rr)
    plan("rr", rr)
    assert calls.count("openai/gpt-4o") == 4 and calls.count("rr") == 2


def test_unknown_models_are_not_kept_and_the_kept_ones_are_bounded() -> None:
    from omniroute_executor.routing.plan import _FixedExpansions

    snapshot = snap()
    with pytest.raises(ResolveError):
        plan("nope/x", snapshot)
    with pytest.raises(ResolveError):  # still refused: a failure is never cached as anything
        plan("nope/x", snapshot)
    fixed = snapshot.derived("plan.fixed", _FixedExpansions)
    for i in range(_FixedExpansions.LIMIT + 10):
        plan(f"groq/model-{i}", snapshot)  # a provider prefix passes any model name through
    assert fixed.get("groq/model-0") is None and fixed.get(f"groq/model-{_FixedExpansions.LIMIT + 9}") is not None
    assert len(fixed._entries) == _FixedExpansions.LIMIT
