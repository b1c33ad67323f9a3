"""Model listings as data: each client format that has a listing endpoint, mapped to its pure renderer.

A renderer takes ``(id, owned_by, created_unix)`` triples in listing order; formats whose listing carries only
names (Gemini, Ollama) use the ids alone. A format missing from the table has no listing shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

from omniroute.v1 import common_pb2
from omniroute_translator.codecs.gemini.models import render_models as render_gemini
from omniroute_translator.codecs.ollama.tags import render_tags
from omniroute_translator.codecs.openai_chat.models import render_models as render_openai

__all__ = ["LISTINGS", "Listed", "Renderer"]

Listed = tuple[str, str, int]
Renderer = Callable[[Sequence[Listed]], bytes]


def _ids(render: Callable[[Iterable[str]], bytes]) -> Renderer:
    return lambda models: render(m[0] for m in models)


LISTINGS: Mapping[common_pb2.Format.ValueType, Renderer] = MappingProxyType(
    {
        common_pb2.FORMAT_OPENAI_CHAT: render_openai,
        common_pb2.FORMAT_GEMINI: _ids(render_gemini),
        common_pb2.FORMAT_OLLAMA_CHAT: _ids(render_tags),
    }
)
