"""Calibrate the semantic cache's threshold on the paraphrase set (tests/data/semantic_paraphrases.json).

For each pair it computes the cosine of the two questions with the executor's built-in local model (the same
code and weights the ``local`` provider serves, loaded in this process) and whether their content signatures
match (the lexical condition of a hit, omniroute_edge.semantic.same_question). For each threshold it prints
precision and recall of the tier's decision (cosine >= threshold AND same signature), recall per kind of
paraphrase, the false hits per kind of non-paraphrase, and, for comparison, the precision and recall of the
cosine alone. Usage::

    uv run --frozen python tools/calibrate_semantic.py [--thresholds 0.8,0.85,...]
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from omniroute_core import jsonx
from omniroute_core.cachesettings import DEFAULT_THRESHOLD
from omniroute_edge.semantic import same_question
from omniroute_executor.local._bert import load

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "semantic_paraphrases.json"
THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98)


@dataclass(frozen=True)
class Pair:
    should_hit: bool
    kind: str
    cosine: float
    same_words: bool


def pairs() -> list[Pair]:
    data = jsonx.loads(DATA.read_bytes())
    rows = [(True, x) for x in data["hit"]] + [(False, x) for x in data["miss"]]
    texts = sorted({t for _, x in rows for t in (x["a"], x["b"])})
    vectors, _ = load().encode(texts)
    index = {t: i for i, t in enumerate(texts)}
    out = []
    for should_hit, x in rows:
        cosine = float(vectors[index[x["a"]]] @ vectors[index[x["b"]]])
        out.append(Pair(should_hit, x["kind"], cosine, same_question(x["a"], x["b"])))
    return out


def scores(rows: list[Pair], threshold: float, *, lexical: bool = True) -> tuple[float, float]:
    """(precision, recall) of the decision at ``threshold``; precision is 1.0 when nothing hits."""
    hit = [r for r in rows if r.cosine >= threshold and (r.same_words or not lexical)]
    true = sum(r.should_hit for r in hit)
    wanted = sum(r.should_hit for r in rows)
    return (true / len(hit) if hit else 1.0), true / wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thresholds", default=",".join(f"{t:.2f}" for t in THRESHOLDS))
    args = parser.parse_args()
    rows = pairs()
    kinds = Counter(r.kind for r in rows if r.should_hit)
    bad_kinds = sorted({r.kind for r in rows if not r.should_hit})
    print(f"{sum(r.should_hit for r in rows)} paraphrase pairs ({dict(kinds)}), "
          f"{sum(not r.should_hit for r in rows)} pairs that must not hit ({', '.join(bad_kinds)})")  # fmt: skip
    print()
    head = "| threshold | precision | recall | " + " | ".join(f"recall: {k}" for k in sorted(kinds))
    head += " | false hits | cosine alone: precision | cosine alone: recall |"
    print(head)
    print("|" + "---:|" * (head.count("|") - 1))
    for threshold in (float(t) for t in args.thresholds.split(",")):
        precision, recall = scores(rows, threshold)
        alone = scores(rows, threshold, lexical=False)
        by_kind = []
        for kind in sorted(kinds):
            of_kind = [r for r in rows if r.should_hit and r.kind == kind]
            by_kind.append(sum(r.cosine >= threshold and r.same_words for r in of_kind) / len(of_kind))
        false_hits = Counter(r.kind for r in rows if not r.should_hit and r.cosine >= threshold and r.same_words)
        marker = " (default)" if abs(threshold - DEFAULT_THRESHOLD) < 1e-9 else ""
        cells = [f"{threshold:.2f}{marker}", f"{precision:.3f}", f"{recall:.3f}", *(f"{x:.3f}" for x in by_kind)]
        cells += [", ".join(f"{k} {n}" for k, n in sorted(false_hits.items())) or "0"]
        cells += [f"{alone[0]:.3f}", f"{alone[1]:.3f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
