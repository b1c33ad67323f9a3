"""Offline input-token counting (``CountTokens``): model families as data, the hub request accounting, and the
embedded BPE tables of ``bpe-openai``. Outside :mod:`omniroute_translator.codecs` because loading the tables reads
package files; everything but :class:`Tokenizers` is pure."""

from __future__ import annotations

from omniroute_translator.tokens._count import TextCounter, count_request
from omniroute_translator.tokens._encodings import ENCODINGS, Tokenizers
from omniroute_translator.tokens._families import DEFAULT_FAMILY, FAMILIES, MODEL_PREFIXES, Family, family_for
from omniroute_translator.tokens._rpc import COUNT_REPLIES, count_tokens

__all__ = [
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
]
