"""Model → family is a table lookup by the longest prefix of the model's last path segment."""

from __future__ import annotations

import pytest

from omniroute_translator.tokens import DEFAULT_FAMILY, FAMILIES, MODEL_PREFIXES, family_for


@pytest.mark.parametrize(
    ("model", "family", "encoding"),
    [
        ("gpt-4o", "openai-o200k", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "openai-o200k", "o200k_base"),
        ("GPT-4.1", "openai-o200k", "o200k_base"),
        ("o3-mini", "openai-o200k", "o200k_base"),
        ("gpt-4", "openai-cl100k", "cl100k_base"),
        ("gpt-4-0613", "openai-cl100k", "cl100k_base"),
        ("gpt-3.5-turbo", "openai-cl100k", "cl100k_base"),
        ("claude-sonnet-4-5", "anthropic-claude", "o200k_base"),
        ("anthropic/claude-3.5-sonnet", "anthropic-claude", "o200k_base"),
        ("gemini-2.5-flash", "google-gemini", "o200k_base"),
        ("meta-llama/Llama-3.3-70B-Instruct", "meta-llama", "cl100k_base"),
        ("llama3.2", "meta-llama", "cl100k_base"),
        ("mistral-large", DEFAULT_FAMILY.name, "o200k_base"),
        ("", DEFAULT_FAMILY.name, "o200k_base"),
    ],
)
def test_family_by_longest_prefix(model: str, family: str, encoding: str) -> None:
    got = family_for(model)
    assert (got.name, got.encoding) == (family, encoding)


def test_every_prefix_names_a_known_family() -> None:
    assert set(MODEL_PREFIXES.values()) <= set(FAMILIES)
    assert all(prefix == prefix.lower() for prefix in MODEL_PREFIXES)
