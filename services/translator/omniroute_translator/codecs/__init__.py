"""Format codecs: one package per wire format, each implementing :class:`~.base.Codec` against the hub.

Pure by contract (import-linter forbids I/O libraries here). Formats are a table: :data:`CODECS` maps the proto
``Format`` to its codec; a format missing from the table is not supported yet, in either direction.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from omniroute.v1 import common_pb2
from omniroute_translator.codecs.anthropic_messages import CODEC as ANTHROPIC_MESSAGES
from omniroute_translator.codecs.base import Codec
from omniroute_translator.codecs.gemini import CODEC as GEMINI
from omniroute_translator.codecs.ollama import CODEC as OLLAMA
from omniroute_translator.codecs.openai_chat import CODEC as OPENAI_CHAT
from omniroute_translator.codecs.openai_responses import CODEC as OPENAI_RESPONSES

__all__ = ["CODECS", "Codec", "codec_for"]

CODECS: Mapping[common_pb2.Format.ValueType, Codec] = MappingProxyType(
    {
        common_pb2.FORMAT_OPENAI_CHAT: OPENAI_CHAT,
        common_pb2.FORMAT_GEMINI: GEMINI,
        common_pb2.FORMAT_OLLAMA_CHAT: OLLAMA,
        common_pb2.FORMAT_ANTHROPIC_MESSAGES: ANTHROPIC_MESSAGES,
        common_pb2.FORMAT_OPENAI_RESPONSES: OPENAI_RESPONSES,
    }
)


def codec_for(
    fmt: common_pb2.Format.ValueType, table: Mapping[common_pb2.Format.ValueType, Codec] = CODECS
) -> Codec | None:
    """The codec of ``fmt``, or ``None`` when the format is not supported."""
    return table.get(fmt)
