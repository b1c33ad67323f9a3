"""The shipped catalog parses, prefixes are unique, paths and headers are data."""

from __future__ import annotations

import pytest

from omniroute.v1 import common_pb2
from omniroute_core.catalog import load_catalog, parse_catalog


def test_shipped_catalog_covers_every_format() -> None:
    catalog = load_catalog()
    formats = {p.format for p in catalog.providers.values()}
    assert {
        common_pb2.FORMAT_OPENAI_CHAT,
        common_pb2.FORMAT_OPENAI_RESPONSES,
        common_pb2.FORMAT_ANTHROPIC_MESSAGES,
        common_pb2.FORMAT_GEMINI,
        common_pb2.FORMAT_OLLAMA_CHAT,
    } <= formats
    assert catalog.lookup("claude") is catalog.providers["anthropic"]
    assert catalog.lookup("OpenAI") is catalog.providers["openai"]
    assert catalog.providers["openai-responses"].path("chat", stream=True, model="gpt-4o") == "/responses"


def test_gemini_routes_by_url_and_streams_with_sse() -> None:
    gemini = load_catalog().providers["gemini"]
    assert gemini.path("chat", stream=False, model="gemini-2.5-flash") == "/models/gemini-2.5-flash:generateContent"
    assert gemini.path("chat", stream=True, model="tuned/x y") == "/models/tuned/x%20y:streamGenerateContent?alt=sse"
    assert gemini.path("embeddings", stream=False, model="m") is None


def test_anthropic_sends_its_api_version() -> None:
    anthropic = load_catalog().providers["anthropic"]
    assert anthropic.headers == {"anthropic-version": "2023-06-01"}
    assert anthropic.auth == "x-api-key"
    assert anthropic.path("chat", stream=True, model="claude-sonnet-4-5") == "/messages"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"providers": {}}, "must be a list"),
        ({"providers": [{"id": "x", "format": "soap", "baseUrl": "http://x"}]}, "unknown format"),
        (
            {
                "providers": [
                    {"id": "a", "format": "openai", "baseUrl": "http://a"},
                    {"id": "b", "aliases": ["a"], "format": "openai", "baseUrl": "http://b"},
                ]
            },
            "claimed twice",
        ),
    ],
)
def test_bad_catalogs_are_refused(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_catalog(doc)


def test_bare_model_inference_and_ambiguity() -> None:
    doc = {
        "providers": [
            {"id": "a", "format": "openai", "baseUrl": "http://a", "models": ["m1", "shared"]},
            {"id": "b", "format": "openai", "baseUrl": "http://b", "models": ["shared"]},
        ]
    }
    catalog = parse_catalog(doc)
    assert [p.id for p in catalog.providers_of_model("m1")] == ["a"]
    assert sorted(p.id for p in catalog.providers_of_model("shared")) == ["a", "b"]


def test_reasoning_models_are_data() -> None:
    catalog = load_catalog()
    assert "claude-sonnet-4-5" in catalog.providers["anthropic"].reasoning_models
    assert "gpt-4o" not in catalog.providers["openai"].reasoning_models
    assert not catalog.providers["groq"].reasoning_models


def test_azure_routes_by_deployment_with_an_api_version_a_connection_may_override() -> None:
    azure = load_catalog().providers["azure"]
    assert (azure.auth, azure.base_url_required) == ("api-key", True)
    assert azure.path("chat", stream=True, model="my gpt") == (
        "/deployments/my%20gpt/chat/completions?api-version=2024-10-21"
    )
    newer = {"apiVersion": "2025-01-01-preview"}
    assert azure.path("embeddings", stream=False, model="emb", options=newer) == (
        "/deployments/emb/embeddings?api-version=2025-01-01-preview"
    )
    assert azure.path("chat", stream=False, model="d", options={"apiVersion": "x&y=1"}) == (
        "/deployments/d/chat/completions?api-version=x%26y%3D1"
    )


def test_prices_come_from_the_shared_price_book() -> None:
    catalog = load_catalog()
    assert catalog.providers["openai"].price("gpt-4o") == 12.5
    assert catalog.providers["cerebras"].price("llama3.1-8b") == 0.2
    assert catalog.providers["openrouter"].price("anything") is None
    assert not catalog.providers["local"].base_url_required
    # every chat and embedding model has a price, so usage is billed and cost-optimized routing can rank it;
    # NVIDIA's API catalog publishes none (pricing.json's notes)
    for spec in catalog.providers.values():
        models = (*spec.models, *spec.operation_models.get("embeddings", ()))
        missing = [m for m in models if spec.price(m) is None]
        assert not missing or spec.id == "nvidia", (spec.id, missing)
