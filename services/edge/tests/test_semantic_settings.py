"""Reading the semantic setting from a snapshot, and the embeddings reply the tier accepts."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_core import jsonx
from omniroute_core.cachesettings import DEFAULT_EMBEDDING_MODEL, DEFAULT_THRESHOLD, SemanticSetting, semantic_setting
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_edge.semantic import EmbeddingError, SettingView, parse_embedding


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, SemanticSetting()),
        ({"policy": "always"}, SemanticSetting()),
        ({"semantic": {"enabled": False}}, SemanticSetting(enabled=False)),
        ({"semantic": {"threshold": 0.97, "model": "openai/x"}}, SemanticSetting(threshold=0.97, model="openai/x")),
        ({"semantic": {"threshold": 1}}, SemanticSetting(threshold=1.0)),
        ({"semantic": {"threshold": 0.1}}, SemanticSetting()),
        ({"semantic": {"threshold": True}}, SemanticSetting()),
        ({"semantic": {"threshold": "0.9", "enabled": "no", "model": " "}}, SemanticSetting()),
        ({"semantic": "on"}, SemanticSetting()),
    ],
)
def test_a_malformed_field_takes_its_default(stored: Any, expected: SemanticSetting) -> None:
    assert semantic_setting(stored) == expected
    assert SemanticSetting().threshold == DEFAULT_THRESHOLD and SemanticSetting().model == DEFAULT_EMBEDDING_MODEL


def test_the_view_follows_the_snapshot() -> None:
    current = [ConfigSnapshot.build(1, (), (), {})]
    view = SettingView(lambda: current[0])
    assert view() == SemanticSetting()
    current[0] = ConfigSnapshot.build(2, (), (), {"cache": {"semantic": {"enabled": False}}})
    assert view().enabled is False


def test_an_openai_embeddings_reply_is_read() -> None:
    body = {"object": "list", "data": [{"index": 0, "embedding": [0.5, -1, 0.25]}], "usage": {"prompt_tokens": 3}}
    embedding = parse_embedding(jsonx.dumps(body))
    assert (embedding.vector, embedding.tokens) == ([0.5, -1.0, 0.25], 3)
    assert parse_embedding(jsonx.dumps({"data": [{"embedding": [1.0]}]})).tokens == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"data": []}',
        b'{"data": [{"embedding": "AAAA"}]}',
        b'{"data": [{"embedding": []}]}',
        b'{"data": [{"embedding": [0, 0]}]}',
        b'{"data": [{"embedding": [1, true]}]}',
        b'{"data": [{"embedding": [1, "2"]}]}',
        b'{"data": [{"embedding": [1, NaN]}]}',
    ],
)
def test_anything_else_is_an_embedding_error(body: bytes) -> None:
    with pytest.raises(EmbeddingError):
        parse_embedding(body)


def test_exported_members() -> None:
    import omniroute_edge.semantic as semantic

    assert set(semantic.__all__) == {
        "TURNS",
        "Candidate",
        "ClientStore",
        "EdgeStore",
        "Embedder",
        "Embedding",
        "EmbeddingError",
        "ExecutorEmbedder",
        "Probe",
        "SemanticCache",
        "SemanticLimits",
        "SemanticMetrics",
        "SettingView",
        "StoredPoint",
        "TurnShape",
        "VectorStore",
        "build_semantic_cache",
        "parse_embedding",
        "same_question",
        "signature",
        "space_name",
        "split_last_turn",
    }
    assert all(hasattr(semantic, name) for name in semantic.__all__)
