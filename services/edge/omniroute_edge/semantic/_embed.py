"""Embeddings for the semantic tier, from the executor: one ``Execute`` call with ``OPERATION_EMBEDDINGS`` and an
OpenAI-format body ``{"model": ..., "input": [text]}``, answered with OpenAI's embeddings response. The model is
any ``provider/model`` the executor serves (the built-in offline ``local`` model by default).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from omniroute.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from omniroute_core import jsonx
from omniroute_core.grpcx import call_metadata

__all__ = ["INPUT_WINDOWS", "Embedder", "Embedding", "EmbeddingError", "ExecutorEmbedder"]

# models known to truncate long input silently, by their window in tokens: a reply that used the whole window may
# have lost the end of the question (where a long prompt's actual question usually is), so it is not used
INPUT_WINDOWS = {"local/all-minilm-l6-v2": 256}


class EmbeddingError(Exception):
    """The executor could not embed the text (refused, failed, malformed reply)."""


@dataclass(frozen=True, slots=True)
class Embedding:
    vector: list[float]
    tokens: int  # the provider's prompt_tokens (0 when it reports none)


class Embedder(Protocol):
    async def embed(self, model: str, text: str, *, key_id: str, request_id: str, timeout_s: float) -> Embedding:
        """Raises :class:`EmbeddingError`, or ``TimeoutError`` when ``timeout_s`` passes."""


class ExecutorEmbedder:
    def __init__(self, executor: executor_pb2_grpc.ExecutorAsyncStub) -> None:
        self._executor = executor

    async def embed(self, model: str, text: str, *, key_id: str, request_id: str, timeout_s: float) -> Embedding:
        meta = common_pb2.RequestMeta(
            request_id=request_id,
            key_id=key_id,
            client_format=common_pb2.FORMAT_OPENAI_CHAT,
            operation=common_pb2.OPERATION_EMBEDDINGS,
            model=model,
            deadline_unix_ms=int((time.time() + timeout_s) * 1000),
            endpoint="/v1/embeddings",
            no_log=True,  # the text is a caller's prompt: it is not logged a second time
        )
        body = jsonx.dumps({"model": model, "input": [text]})
        request = executor_pb2.ExecuteRequest(meta=meta, body=body)
        try:
            reply = await self._executor.Execute(request, metadata=call_metadata(request_id), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(f"embedding with {model!r} took longer than {timeout_s}s") from exc
            raise EmbeddingError(f"the executor call failed: {exc.code()} {exc.details()}") from exc
        if reply.status != 200:
            raise EmbeddingError(f"embedding with {model!r} answered {reply.status}: {reply.body[:300]!r}")
        return parse_embedding(reply.body)


def parse_embedding(body: bytes) -> Embedding:
    """The first vector of an OpenAI embeddings response. Raises :class:`EmbeddingError`."""
    try:
        doc: Any = jsonx.loads(body)
        vector = doc["data"][0]["embedding"]
    except (jsonx.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise EmbeddingError("the embeddings reply has no data[0].embedding") from exc
    if (
        not isinstance(vector, list)
        or not vector
        or not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in vector)
        or not any(vector)
    ):
        raise EmbeddingError("the embedding is not a non-zero list of finite numbers")
    usage = doc.get("usage") if isinstance(doc, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return Embedding([float(x) for x in vector], tokens if isinstance(tokens, int) else 0)
