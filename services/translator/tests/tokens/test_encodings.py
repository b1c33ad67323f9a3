"""The embedded tables against published reference encodings, offline.

References: tiktoken's own test vectors (``hello world``, ``rer``, ``today\\n \\n``) and the OpenAI cookbook
"How to count tokens with tiktoken" (token ids printed for each encoding)."""

from __future__ import annotations

import warnings

import pytest

from omniroute_translator.tokens import Tokenizers

REFERENCE = [
    ("cl100k_base", "hello world", [15339, 1917]),
    ("o200k_base", "hello world", [24912, 2375]),
    ("cl100k_base", "rer", [38149]),
    ("cl100k_base", "'rer", [2351, 81]),
    ("cl100k_base", "today\n \n", [31213, 27907]),
    ("cl100k_base", "today\n  \n", [31213, 14211]),
    ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
    ("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
    ("cl100k_base", "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
    ("o200k_base", "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
    ("cl100k_base", "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
    ("o200k_base", "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
    ("cl100k_base", "お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]),
    ("o200k_base", "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
]


@pytest.mark.parametrize(("encoding", "text", "ids"), REFERENCE)
def test_embedded_tables_match_the_published_token_ids(
    tokenizers: Tokenizers, encoding: str, text: str, ids: list[int]
) -> None:
    tokenizers.warm([encoding])  # imports bpe_openai (its import warns about a deprecated importlib call)
    import bpe_openai

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        wrapper = bpe_openai.get_encoding(encoding)
    assert wrapper.encode_ordinary(text) == ids
    assert tokenizers.count(encoding, text) == len(ids)


def test_special_token_text_is_ordinary_text(tokenizers: Tokenizers) -> None:
    # a prompt that quotes "<|endoftext|>" is counted as the characters it is, never refused
    assert tokenizers.count("cl100k_base", "hello <|endoftext|>") == 7


def test_long_texts_are_counted_whole(tokenizers: Tokenizers) -> None:
    # 1.2 M characters: past the tiktoken-compatible wrapper's limit; "hello" then " world" repeated
    assert tokenizers.count("o200k_base", "hello world " * 100_000) == 200_001


def test_empty_text_and_unknown_encoding(tokenizers: Tokenizers) -> None:
    assert tokenizers.count("o200k_base", "") == 0
    with pytest.raises(KeyError):
        tokenizers.count("p50k_base", "x")
