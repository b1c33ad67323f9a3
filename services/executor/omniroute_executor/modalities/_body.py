"""The operations the attempt loop serves, by catalog name, and how their request bodies are read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_core.multipart import MultipartError, parse_form
from omniroute_executor.modalities._wire import JSON, Source
from omniroute_executor.resolve import ResolveError

__all__ = ["OPERATION_NAMES", "parse_source"]

# operation → its name in the catalog (``paths``, ``operationModels``, ``dialects``)
OPERATION_NAMES: Mapping[common_pb2.Operation.ValueType, str] = {
    common_pb2.OPERATION_CHAT: "chat",
    common_pb2.OPERATION_EMBEDDINGS: "embeddings",
    common_pb2.OPERATION_IMAGES: "images",
    common_pb2.OPERATION_TRANSCRIPTION: "transcription",
}


def parse_source(meta: common_pb2.RequestMeta, body: bytes) -> Source:
    """The client's request, parsed: a JSON object, or the multipart form of a transcription.

    Raises :class:`ResolveError` (400) when the body is not what the operation takes.
    """
    if meta.operation == common_pb2.OPERATION_TRANSCRIPTION:
        try:
            return Source(body, parse_form(body, meta.content_type), meta.content_type)
        except MultipartError as exc:
            raise ResolveError(hub_error(400, f"invalid multipart body: {exc}", code="invalid_multipart")) from exc
    try:
        parsed: Any = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise ResolveError(hub_error(400, f"request body is not valid JSON: {exc}")) from exc
    if not isinstance(parsed, dict):
        raise ResolveError(hub_error(400, "request body must be a JSON object"))
    return Source(body, parsed, JSON)
