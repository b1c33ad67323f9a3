"""Reading model strings (DESIGN.md "Model strings"), table-driven: prefixes, node prefixes, aliases (chains,
cycles), combos, catalog inference through custom models, ambiguity, and the expansion with skipped steps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from omniroute_core.catalog import Catalog, parse_catalog
from omniroute_core.nodes import CustomModel, ProviderNode
from omniroute_core.resolution import (
    ResolveError,
    expand,
    is_reasoning_model,
    model_price,
    name_model,
    reference_cycle,
)
from omniroute_core.snapshot import Combo, ComboStep, ConfigSnapshot, ProviderConnection, parse_snapshot

CATALOG: Catalog = parse_catalog(
    {
        "providers": [
            {"id": "openai", "aliases": ["oai"], "format": "openai", "baseUrl": "http://o",
             "models": ["gpt-4o", "shared"], "reasoningModels": ["o3"],
             "prices": {"gpt-4o": {"input": 2, "output": 8}}},
            {"id": "nebius", "format": "openai", "baseUrl": "http://n", "models": ["shared"]},
            {"id": "anthropic", "aliases": ["claude"], "format": "anthropic", "baseUrl": "http://a",
             "models": ["claude-sonnet-4-5"]},
        ]
    }
)  # fmt: skip

NODE = ProviderNode("node-1", "vllm", "Local", "openai-compatible", "chat", "http://v/v1", headers_enc="v1:sealed")


def conn(cid: str, provider: str, priority: int = 0, active: bool = True) -> ProviderConnection:
    return ProviderConnection(cid, provider, cid, "", "", priority=priority, is_active=active)


def snap(
    aliases: dict[str, str] | None = None,
    combos: tuple[Combo, ...] = (),
    custom: tuple[CustomModel, ...] = (),
) -> ConfigSnapshot:
    conns = (conn("o1", "openai"), conn("n1", "nebius"), conn("v1", "node-1"), conn("a1", "anthropic", active=False))
    return ConfigSnapshot.build(1, conns, (), {}, combos, aliases=aliases, nodes=(NODE,), custom_models=custom)


def combo(name: str, *steps: str) -> Combo:
    return Combo(name, name, "priority", tuple(ComboStep(s) for s in steps))


@pytest.mark.parametrize(
    ("model", "snapshot", "expected"),
    [
        ("openai/gpt-4o", snap(), ("openai", "gpt-4o", ())),
        ("OAI/gpt-4o", snap(), ("openai", "gpt-4o", ())),  # prefixes are case-insensitive
        ("nebius/Qwen/Qwen3-Embedding-8B", snap(), ("nebius", "Qwen/Qwen3-Embedding-8B", ())),  # first '/' splits
        ("vllm/qwen3-8b", snap(), ("node-1", "qwen3-8b", ())),  # a node's prefix
        ("gpt-4o", snap(), ("openai", "gpt-4o", ())),  # catalog inference
        ("fast", snap({"fast": "claude/claude-sonnet-4-5"}), ("anthropic", "claude-sonnet-4-5", ("fast",))),
        ("a", snap({"a": "b", "b": "gpt-4o"}), ("openai", "gpt-4o", ("a", "b"))),  # chains
        ("meta/llama", snap({"meta/llama": "vllm/llama-3"}), ("node-1", "llama-3", ("meta/llama",))),
        # an alias named like a catalog model wins over inference (aliases come first)
        ("gpt-4o", snap({"gpt-4o": "nebius/gpt-4o"}), ("nebius", "gpt-4o", ("gpt-4o",))),
        ("qwen3-8b", snap(custom=(CustomModel("node-1", "qwen3-8b"),)), ("node-1", "qwen3-8b", ())),
        ("shared", snap({"shared": "oai/shared"}), ("openai", "shared", ("shared",))),
    ],
)
def test_names(model: str, snapshot: ConfigSnapshot, expected: tuple[str, str, tuple[str, ...]]) -> None:
    named = name_model(model, CATALOG, snapshot)
    assert named.provider is not None and named.combo is None
    assert (named.provider.id, named.model, named.aliases) == expected


def test_active_connections_are_kept_with_their_snapshot_only() -> None:
    first = snap()
    targets = [t.connection for t in expand("openai/gpt-4o", CATALOG, first).targets]
    assert targets == [conn("o1", "openai")]
    assert expand("openai/gpt-4o", CATALOG, first).targets[0].connection is targets[0]
    # a changed snapshot (dataclasses.replace copies every field but the derived data) reads its own connections
    changed = replace(
        first, connections_by_provider={"openai": (conn("o2", "openai"), conn("o1", "openai", active=False))}
    )
    assert [t.connection.id for t in expand("openai/gpt-4o", CATALOG, changed).targets] == ["o2"]
    with pytest.raises(ResolveError):
        expand("openai/gpt-4o", CATALOG, replace(first, connections_by_provider={}))
    assert first.derived("test.key", lambda: 1) == 1 and first.derived("test.key", lambda: 2) == 1


def test_an_alias_to_a_combo_and_a_combo_by_name() -> None:
    snapshot = snap({"best": "team"}, (combo("team", "gpt-4o"),))
    named = name_model("best", CATALOG, snapshot)
    assert named.combo is not None and named.combo.name == "team" and named.aliases == ("best",)
    assert name_model("team", CATALOG, snapshot).aliases == ()


@pytest.mark.parametrize(
    ("model", "snapshot", "status", "code", "needle"),
    [
        ("", snap(), 400, "model_required", "'model' is required"),
        ("openai/", snap(), 400, "", "names no model"),
        ("shared", snap(), 400, "model_ambiguous", "use one of: nebius/shared, openai/shared"),
        (
            "qwen",
            snap(custom=(CustomModel("node-1", "qwen"), CustomModel("nebius", "qwen"))),
            400,
            "model_ambiguous",
            "nebius/qwen, node-1/qwen",
        ),
        ("nope/x", snap(), 404, "model_not_found", "unknown provider 'nope'"),
        ("ghost", snap(), 404, "model_not_found", "no provider, alias or combo has that name"),
        ("a", snap({"a": "ghost"}), 404, "model_not_found", "(alias 'a' -> 'ghost')"),
        ("a", snap({"a": "b", "b": "a"}), 400, "alias_cycle", "a -> b -> a"),
    ],
)
def test_unresolvable(model: str, snapshot: ConfigSnapshot, status: int, code: str, needle: str) -> None:
    with pytest.raises(ResolveError) as info:
        name_model(model, CATALOG, snapshot)
    assert (info.value.error.status, info.value.error.code) == (status, code)
    assert needle in info.value.error.message


def test_expansion_carries_node_headers_and_skips_unservable_steps() -> None:
    snapshot = snap({"smart": "claude/claude-sonnet-4-5"}, (combo("team", "smart", "vllm/qwen", "openai/gpt-4o"),))
    result = expand("team", CATALOG, snapshot)
    assert [(t.provider.id, t.connection.id, t.model, t.secret_headers) for t in result.targets] == [
        ("node-1", "v1", "qwen", "v1:sealed"),
        ("openai", "o1", "gpt-4o", ""),
    ]
    (skipped,) = result.skipped
    assert (skipped.step, skipped.path, skipped.error.code) == ("smart", ("team",), "provider_not_configured")
    assert result.targets[0].base_url == "http://v/v1"


def test_expansion_orders_through_the_callbacks() -> None:
    snapshot = snap(combos=(combo("team", "openai/gpt-4o", "vllm/qwen"),))
    result = expand("team", CATALOG, snapshot, order_steps=lambda _c, groups: list(reversed(groups)))
    assert [t.connection.id for t in result.targets] == ["v1", "o1"]


def test_expansion_of_a_node_without_connection_names_its_prefix() -> None:
    snapshot = ConfigSnapshot.build(1, (), (), {}, nodes=(NODE,))
    with pytest.raises(ResolveError) as info:
        expand("vllm/x", CATALOG, snapshot)
    assert "provider node 'vllm' (node-1)" in info.value.error.message


def test_prices_and_reasoning_from_catalog_and_custom_models() -> None:
    custom = (
        CustomModel("openai", "gpt-4o", prices={"input": 1, "output": 1}),
        CustomModel("node-1", "r1", reasoning=True),
    )
    snapshot = snap(custom=custom)
    openai, node = CATALOG.providers["openai"], snapshot.node_specs["node-1"]
    assert model_price(openai, "gpt-4o", snapshot) == 2.0  # the custom price wins
    assert model_price(openai, "gpt-4o", snap()) == 10.0
    assert model_price(openai, "o3", snapshot) is None
    assert is_reasoning_model(openai, "o3", snapshot) and is_reasoning_model(node, "r1", snapshot)
    assert not is_reasoning_model(openai, "gpt-4o", snapshot)


def test_reference_cycles() -> None:
    snapshot = snap({"a": "team", "b": "openai/gpt-4o"}, (combo("team", "b", "a"),))
    assert reference_cycle("a", CATALOG, snapshot) == ("a", "team", "a")
    assert reference_cycle("b", CATALOG, snapshot) is None


def test_routing_config_survives_the_published_json_and_old_snapshots_parse() -> None:
    custom = (CustomModel("node-1", "qwen", "embedding", "Qwen", {"input": 0.1}, reasoning=True),)
    original = snap({"fast": "vllm/qwen"}, custom=custom)
    parsed = parse_snapshot(original.to_json())
    assert parsed.aliases == {"fast": "vllm/qwen"}
    assert parsed.nodes == (NODE,) and parsed.custom_models == custom
    assert parsed.nodes_by_prefix["vllm"] == original.nodes_by_prefix["vllm"]
    old = parse_snapshot(b'{"version": 3, "providers": [], "apiKeys": [], "settings": {}}')
    assert old.aliases == {} and old.nodes == () and old.custom_models == () and old.node_specs == {}
