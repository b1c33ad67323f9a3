"""The local embedding model against its reference: vectors sentence-transformers itself produced from the same
model files (``data/minilm_reference.json``, its ``origin`` says how), and its lazy, off-loop loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from omniroute_core import jsonx
from omniroute_executor.local import DIMENSIONS, MODEL_ID, LocalEmbedder
from omniroute_executor.local._bert import DIMENSIONS as MODEL_DIMENSIONS
from omniroute_executor.local._bert import MiniLM, load

REFERENCE = jsonx.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_bytes())


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return load()


def cosines(ours: np.ndarray, reference: list[list[float]]) -> list[float]:
    ref = np.asarray(reference, dtype=np.float32)
    return list((ours * ref).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1))


def test_batched_vectors_match_the_pytorch_reference(model: MiniLM) -> None:
    vectors, _ = model.encode(REFERENCE["texts"])
    assert vectors.shape == (len(REFERENCE["texts"]), DIMENSIONS)
    assert min(cosines(vectors, REFERENCE["vectors"])) > 0.99999
    assert np.abs(vectors - np.asarray(REFERENCE["vectors"], dtype=np.float32)).max() < 1e-5


def test_each_text_alone_matches_too(model: MiniLM) -> None:
    """Padding must not leak into a text's vector: encoded alone, each is the same."""
    for text, expected in zip(REFERENCE["texts"], REFERENCE["vectors"], strict=True):
        vector, _ = model.encode([text])
        assert cosines(vector, [expected])[0] > 0.99999


def test_long_inputs_are_truncated_at_256_tokens(model: MiniLM) -> None:
    assert model.count_tokens([" ".join(["token"] * 400)]) == 256
    assert model.count_tokens(["hello world"]) == 4  # [CLS] hello world [SEP]


async def test_the_model_loads_on_first_use_only() -> None:
    embedder = LocalEmbedder()
    try:
        before = embedder.loaded
        vectors, tokens = await embedder.embed(["x"] * 40)  # more than one batch
        assert (before, embedder.loaded) == (False, True)
        assert vectors.shape == (40, DIMENSIONS) and tokens == 120
    finally:
        embedder.close()


def test_starting_the_executor_imports_no_numpy() -> None:
    """Idle memory: NumPy and the tokenizer load with the model, on the first local embedding."""
    code = "import sys, omniroute_executor.main; print('numpy' in sys.modules, 'tokenizers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_public_model_id_and_dimensions_are_stable() -> None:
    assert (MODEL_ID, DIMENSIONS, MODEL_DIMENSIONS) == ("local/all-minilm-l6-v2", 384, 384)
