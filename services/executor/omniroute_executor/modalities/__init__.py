"""The non-chat operations: embeddings, image generation and transcription (their provider dialects, pure, and
the attempt runner that speaks them), and the request bodies they take."""

from __future__ import annotations

from omniroute_executor.modalities._body import OPERATION_NAMES, parse_source
from omniroute_executor.modalities._run import DIALECTS, ModalityRunner
from omniroute_executor.modalities._wire import Source, WireError

__all__ = ["DIALECTS", "OPERATION_NAMES", "ModalityRunner", "Source", "WireError", "parse_source"]
