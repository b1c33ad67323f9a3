"""The semantic tier's decision at the default threshold, on the paraphrase set, with the real local model served
by the executor (through the gateway's /v1/embeddings): precision and recall must not fall below what the README
reports (tools/calibrate_semantic.py prints the whole table)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from omniroute_core import jsonx
from omniroute_core.cachesettings import DEFAULT_EMBEDDING_MODEL, DEFAULT_THRESHOLD
from omniroute_devservers.control import config_synced, make_key
from omniroute_devservers.suite import Suite
from omniroute_edge.semantic import same_question

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parent / "data" / "semantic_paraphrases.json"
# measured at the default threshold (README "Semantic cache"); precision matters more: a false hit is a wrong answer
PRECISION = 1.0
RECALL = 0.40
RECALL_SURFACE = 0.89


async def test_the_default_threshold_keeps_the_reported_precision_and_recall(
    admin: httpx.AsyncClient, suite: Suite
) -> None:
    data = jsonx.loads(DATA.read_bytes())
    rows = [(True, x) for x in data["hit"]] + [(False, x) for x in data["miss"]]
    texts = sorted({t for _, x in rows for t in (x["a"], x["b"])})
    key = (await make_key(admin, scopes=["embeddings"]))[1]
    await config_synced(admin, [suite.edge_url])
    async with httpx.AsyncClient(timeout=120) as http:
        resp = await http.post(
            suite.edge_url + "/v1/embeddings",
            json={"model": DEFAULT_EMBEDDING_MODEL, "input": texts},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert resp.status_code == 200, resp.text
    vectors = {texts[item["index"]]: item["embedding"] for item in resp.json()["data"]}

    def hits(a: str, b: str) -> bool:
        cosine = sum(x * y for x, y in zip(vectors[a], vectors[b], strict=True))
        return cosine >= DEFAULT_THRESHOLD and same_question(a, b)

    decided = [(should, x["kind"], hits(x["a"], x["b"])) for should, x in rows]
    false_hits = [kind for should, kind, hit in decided if hit and not should]
    true_hits = [kind for should, kind, hit in decided if hit and should]
    assert false_hits == []
    precision = len(true_hits) / (len(true_hits) + len(false_hits))
    assert precision >= PRECISION
    assert len(true_hits) / len(data["hit"]) >= RECALL
    surface = sum(1 for x in data["hit"] if x["kind"] == "surface")
    assert true_hits.count("surface") / surface >= RECALL_SURFACE
