"""Model families as data: which tokenizer and which framing overheads a model's prompt is counted with.

The overheads are OpenAI's published accounting (the OpenAI cookbook "How to count tokens with tiktoken",
sections 6 and 7, whose results match the API's own ``prompt_tokens``): 3 tokens framing every message, 1 more
for a ``name``, 3 priming the reply, and for tools 7 (o200k models) or 10 (cl100k models) per function,
3 opening a property list, 3 per property, -3 opening an enum, 3 per enum item, 12 closing the tool list.

Vendors that publish no offline tokenizer (Anthropic, Google, Meta, Mistral, ...) are counted with the closest
embedded table and the same framing: an estimate, documented as such. Images have no pixel dimensions in a
request we are allowed to fetch, so each one costs a flat, per-family number of tokens (see ``image_tokens``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "MODEL_PREFIXES", "Family", "family_for"]


@dataclass(frozen=True, slots=True)
class Family:
    """How to count a prompt for one family of models.

    ``encoding``: the embedded BPE table. ``per_message`` / ``per_name`` / ``reply_priming``: the chat framing.
    ``func_init`` … ``func_end``: the tool-definition accounting. ``image_tokens``: the flat cost of one image
    (``image_tokens_low`` when the client asked for ``detail: low``). ``file_tokens``: the flat cost of a document
    whose text we cannot read offline (a PDF, an uploaded file).
    """

    name: str
    encoding: str
    image_tokens: int
    image_tokens_low: int
    file_tokens: int = 1500
    per_message: int = 3
    per_name: int = 1
    reply_priming: int = 3
    func_init: int = 7
    prop_init: int = 3
    prop_key: int = 3
    enum_init: int = -3
    enum_item: int = 3
    func_end: int = 12


_OPENAI_O200K = Family(
    "openai-o200k",
    "o200k_base",
    # OpenAI: 85 base + 170 per 512px tile; a 1024x1024 image at detail high is 4 tiles = 765; low is 85
    image_tokens=765,
    image_tokens_low=85,
)
_OPENAI_CL100K = Family("openai-cl100k", "cl100k_base", image_tokens=765, image_tokens_low=85, func_init=10)
# Anthropic: tokens ~= width*height/750, and images are scaled down to ~1.15 megapixels, so at most ~1600
_CLAUDE = Family("anthropic-claude", "o200k_base", image_tokens=1600, image_tokens_low=1600)
# Gemini: 258 tokens per image up to 384px, per 768x768 tile above; one tile is the common case
_GEMINI = Family("google-gemini", "o200k_base", image_tokens=258, image_tokens_low=258)
# Llama 3's tokenizer is cl100k_base plus 28k extra tokens, so cl100k is the closest embedded table
_LLAMA = Family("meta-llama", "cl100k_base", image_tokens=1600, image_tokens_low=1600)

DEFAULT_FAMILY = Family("default-o200k", "o200k_base", image_tokens=765, image_tokens_low=85)

FAMILIES: Mapping[str, Family] = MappingProxyType(
    {f.name: f for f in (_OPENAI_O200K, _OPENAI_CL100K, _CLAUDE, _GEMINI, _LLAMA, DEFAULT_FAMILY)}
)

# Model-name prefixes (lower case, after any ``vendor/`` path) → family; the longest matching prefix wins.
MODEL_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "gpt-4o": "openai-o200k",
        "chatgpt-4o": "openai-o200k",
        "gpt-4.1": "openai-o200k",
        "gpt-4.5": "openai-o200k",
        "gpt-5": "openai-o200k",
        "gpt-oss": "openai-o200k",
        "o1": "openai-o200k",
        "o3": "openai-o200k",
        "o4": "openai-o200k",
        "codex": "openai-o200k",
        "gpt-4": "openai-cl100k",
        "gpt-3.5": "openai-cl100k",
        "gpt-35": "openai-cl100k",
        "text-embedding-3": "openai-cl100k",
        "text-embedding-ada": "openai-cl100k",
        "claude": "anthropic-claude",
        "anthropic.claude": "anthropic-claude",
        "gemini": "google-gemini",
        "gemma": "google-gemini",
        "llama": "meta-llama",
    }
)


def family_for(
    model: str, prefixes: Mapping[str, str] = MODEL_PREFIXES, families: Mapping[str, Family] = FAMILIES
) -> Family:
    """The family of ``model`` by the longest prefix of its last path segment (``openrouter``-style
    ``vendor/model`` names count by the model part); :data:`DEFAULT_FAMILY` when no prefix matches."""
    name = model.rsplit("/", 1)[-1].strip().lower()
    best = ""
    for prefix in prefixes:
        if name.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return families[prefixes[best]] if best else DEFAULT_FAMILY
