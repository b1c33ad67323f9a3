"""Provider nodes and custom models: catalog entries that operators add at run time (``/api/provider-nodes``,
``/api/provider-models``), published in the config snapshot.

A **provider node** is an OpenAI-compatible or Anthropic-compatible endpoint with a user-chosen prefix: once it has
an active connection (``/api/providers`` with ``provider`` = the node's id), ``<prefix>/<model>`` routes to it. It
becomes a :class:`~omniroute_core.catalog.ProviderSpec` like any catalog provider (:meth:`ProviderNode.spec`), so
nothing downstream knows whether a provider came from the catalog file or from the API. Its custom headers may hold
secrets, so they travel encrypted (``headers_enc``, AES-GCM bound to the node id) and only the executor decrypts.

A **custom model** adds a model id to a catalog provider or a node, with its type and optional prices: bare-name
inference finds it, cost-optimized routing reads its price, and the thinking-budget setting may turn reasoning on
for it when ``reasoning`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omniroute_core.catalog import ProviderSpec
from omniroute_core.formats import FORMAT_BY_NAME

__all__ = [
    "MODEL_TYPES",
    "NODE_KINDS",
    "CustomModel",
    "NodeKind",
    "ProviderNode",
    "parse_custom_model",
    "parse_node",
]

# What a model is for; the catalog endpoint groups by these, a custom model carries one.
MODEL_TYPES = ("chat", "embedding", "image", "audio")


@dataclass(frozen=True, slots=True)
class NodeKind:
    """The wire details of one node type and API type: data, like a catalog entry."""

    format: str
    chat_path: str
    auth: str
    headers: Mapping[str, str] = field(default_factory=dict)


# (type, apiType) → kind. The anthropic-version header is the one Anthropic-compatible servers expect; a node's
# custom headers may override it.
NODE_KINDS: Mapping[tuple[str, str], NodeKind] = {
    ("openai-compatible", "chat"): NodeKind("openai", "/chat/completions", "bearer"),
    ("openai-compatible", "responses"): NodeKind("openai-responses", "/responses", "bearer"),
    ("anthropic-compatible", "messages"): NodeKind(
        "anthropic", "/messages", "x-api-key", {"anthropic-version": "2023-06-01"}
    ),
}


@dataclass(frozen=True, slots=True)
class ProviderNode:
    id: str
    prefix: str
    name: str
    type: str  # "openai-compatible" | "anthropic-compatible"
    api_type: str  # "chat" | "responses" (OpenAI-compatible) | "messages" (Anthropic-compatible)
    base_url: str
    headers_enc: str = ""  # AES-GCM (aad = id) of the JSON object of custom headers; "" when none
    chat_path: str = ""  # "" = the kind's default
    models_path: str = ""  # "" = /models

    @property
    def kind(self) -> NodeKind:
        return NODE_KINDS.get((self.type, self.api_type)) or NODE_KINDS[("openai-compatible", "chat")]

    def spec(self, models: tuple[str, ...] = ()) -> ProviderSpec:
        """This node as a provider: routable by its prefix, serving ``models`` (its custom models)."""
        kind = self.kind
        return ProviderSpec(
            id=self.id,
            format=FORMAT_BY_NAME[kind.format],
            base_url=self.base_url.rstrip("/"),
            auth=kind.auth,
            paths={"chat": self.chat_path or kind.chat_path, "models": self.models_path or "/models"},
            capabilities=frozenset({"chat"}),
            models=models,
            headers=dict(kind.headers),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "name": self.name,
            "type": self.type,
            "apiType": self.api_type,
            "baseUrl": self.base_url,
            "headersEnc": self.headers_enc,
            "chatPath": self.chat_path,
            "modelsPath": self.models_path,
        }


def parse_node(raw: Mapping[str, Any]) -> ProviderNode:
    return ProviderNode(
        id=str(raw["id"]),
        prefix=str(raw["prefix"]),
        name=str(raw.get("name") or raw["prefix"]),
        type=str(raw.get("type") or "openai-compatible"),
        api_type=str(raw.get("apiType") or "chat"),
        base_url=str(raw.get("baseUrl") or ""),
        headers_enc=str(raw.get("headersEnc") or ""),
        chat_path=str(raw.get("chatPath") or ""),
        models_path=str(raw.get("modelsPath") or ""),
    )


@dataclass(frozen=True, slots=True)
class CustomModel:
    """A model id added to a provider (catalog id or node id). ``prices`` are USD per million tokens
    (``{"input": 2.5, "output": 10}``), as in the catalog."""

    provider: str
    model: str
    type: str = "chat"
    name: str = ""
    prices: Mapping[str, float] = field(default_factory=dict)
    reasoning: bool = False

    def price(self) -> float | None:
        if not self.prices:
            return None
        return float(self.prices.get("input", 0.0)) + float(self.prices.get("output", 0.0))

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "type": self.type,
            "name": self.name,
            "prices": dict(self.prices),
            "reasoning": self.reasoning,
        }


def parse_custom_model(raw: Mapping[str, Any]) -> CustomModel:
    prices = raw.get("prices")
    return CustomModel(
        provider=str(raw["provider"]),
        model=str(raw["model"]),
        type=str(raw.get("type") or "chat"),
        name=str(raw.get("name") or ""),
        prices={str(k): float(v) for k, v in prices.items() if isinstance(v, int | float)}
        if isinstance(prices, Mapping)
        else {},
        reasoning=bool(raw.get("reasoning", False)),
    )
