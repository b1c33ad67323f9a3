"""Wire formats as data: names used in configuration and the catalog, mapped to the proto enum."""

from __future__ import annotations

from omniroute.v1 import common_pb2

__all__ = ["FORMAT_BY_NAME", "HUB_FORMAT", "format_name"]

HUB_FORMAT = common_pb2.FORMAT_OPENAI_CHAT

FORMAT_BY_NAME: dict[str, common_pb2.Format.ValueType] = {
    "openai": common_pb2.FORMAT_OPENAI_CHAT,
    "openai-responses": common_pb2.FORMAT_OPENAI_RESPONSES,
    "anthropic": common_pb2.FORMAT_ANTHROPIC_MESSAGES,
    "gemini": common_pb2.FORMAT_GEMINI,
    "ollama": common_pb2.FORMAT_OLLAMA_CHAT,
}
_NAME_BY_FORMAT = {v: k for k, v in FORMAT_BY_NAME.items()}


def format_name(fmt: common_pb2.Format.ValueType) -> str:
    return _NAME_BY_FORMAT.get(fmt, "unspecified")
