"""The public surface of :mod:`omniroute_translator.tokens` is pinned (STYLE rule 5)."""

from __future__ import annotations

import omniroute_translator.tokens as tokens


def test_exported_members() -> None:
    assert set(tokens.__all__) == {
        "COUNT_REPLIES",
        "DEFAULT_FAMILY",
        "ENCODINGS",
        "FAMILIES",
        "MODEL_PREFIXES",
        "Family",
        "TextCounter",
        "Tokenizers",
        "count_request",
        "count_tokens",
        "family_for",
    }
    assert all(hasattr(tokens, name) for name in tokens.__all__)
