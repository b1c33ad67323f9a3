"""The built-in ``local`` provider: OpenAI-format embeddings from the offline model, off the event loop.

The model loads on first use (so an executor that never embeds keeps its idle memory: not even NumPy is imported
before), in a worker thread, once.
Every encode runs in a small thread pool whose size bounds the CPU the model may take (``concurrency``); requests
beyond it wait their turn. Inputs are encoded in batches of :data:`BATCH` texts, padded to the longest of each.

The model id is stable: ``local/all-minilm-l6-v2`` (384 dimensions, unit length, cosine = dot product), the
embedding the edge's semantic cache uses by default.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_executor.modalities._wire import JSON, WireError, WireReply

if TYPE_CHECKING:
    import numpy as np

    from omniroute_executor.local._bert import MiniLM

__all__ = ["BATCH", "MAX_INPUTS", "LocalEmbedder"]

log = logging.getLogger(__name__)

BATCH = 32
MAX_INPUTS = 2048  # OpenAI's own limit per request
DIMENSIONS = 384


def _texts(doc: Mapping[str, Any]) -> list[str]:
    raw = doc.get("input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise WireError(
            hub_error(
                400, "'input' must be a string or a non-empty array of strings for the local model", param="input"
            )
        )
    if len(raw) > MAX_INPUTS:
        raise WireError(hub_error(400, f"'input' may hold at most {MAX_INPUTS} strings", param="input"))
    if any(not t for t in raw):
        raise WireError(hub_error(400, "'input' strings must not be empty", param="input"))
    return list(raw)


class LocalEmbedder:
    def __init__(self, *, concurrency: int = 1, loader: Callable[[], MiniLM] | None = None) -> None:
        self._loader = loader or _load
        self._model: MiniLM | None = None
        self._loading = asyncio.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="local-embed")

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def model(self) -> MiniLM:
        if self._model is None:
            async with self._loading:
                if self._model is None:
                    loop = asyncio.get_running_loop()
                    self._model = await loop.run_in_executor(self._pool, self._loader)
                    log.info("local embedding model loaded")
        return self._model

    async def embed(self, texts: list[str]) -> tuple[np.ndarray[Any, np.dtype[np.float32]], int]:
        """Unit-length vectors of ``texts`` (one row each) and the tokens read."""
        import numpy as np

        model = await self.model()
        loop = asyncio.get_running_loop()
        rows: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        tokens = 0
        for start in range(0, len(texts), BATCH):
            vectors, used = await loop.run_in_executor(self._pool, model.encode, texts[start : start + BATCH])
            rows.append(vectors)
            tokens += used
        return np.concatenate(rows), tokens

    async def reply(self, doc: Mapping[str, Any], model_id: str) -> tuple[WireReply, common_pb2.Usage]:
        """The OpenAI embeddings reply to request ``doc``. Raises :class:`WireError` (400) on a bad request."""
        texts = _texts(doc)
        fmt = doc.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise WireError(hub_error(400, "'encoding_format' must be 'float' or 'base64'", param="encoding_format"))
        dims = doc.get("dimensions")
        if dims is not None and dims != DIMENSIONS:
            raise WireError(
                hub_error(400, f"the local model has {DIMENSIONS} dimensions; 'dimensions' cannot change that")
            )
        vectors, tokens = await self.embed(texts)
        data = [
            {
                "object": "embedding",
                "index": i,
                # base64: the little-endian float32 bytes, as OpenAI encodes them (its SDK asks for this by default)
                "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode()
                if fmt == "base64"
                else row.tolist(),
            }
            for i, row in enumerate(vectors)
        ]
        body = {
            "object": "list",
            "data": data,
            "model": model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        usage = common_pb2.Usage(input_tokens=tokens, total_tokens=tokens)
        return WireReply(jsonx.dumps(body), JSON, usage), usage

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _load() -> MiniLM:
    from omniroute_executor.local._bert import load

    return load()
