"""The cross matrix (issue 3, STYLE rule 4): every ordered pair of distinct registered formats has a named pair
golden for requests, responses and streams.

A pair golden is a decode case of the source codec whose ``case.json`` names the target codec (``"target"``), so
the source's decoder and the target's encoder run through the hub. Its folder is named
``pair_to_<target>_<kind>[_<behaviour>]``. The formats come from the codec table, so a newly registered format
fails here until its pairs exist in both directions; an unregistered one is not asked for. Stream pair goldens are
stream-decode cases, so ``test_goldens`` also replays each of them split at random byte boundaries.
"""

from __future__ import annotations

from itertools import permutations

import pytest

from omniroute_translator.codecs import CODECS
from omniroute_translator.goldens import Case, find_cases

KINDS = ("request", "response", "stream")
FORMATS = sorted(codec.name for codec in CODECS.values())
PAIRS = list(permutations(FORMATS, 2))
CASES = list(find_cases())
PAIR_CASES = [c for c in CASES if c.target is not None]
REGENERATE = "uv run python -m omniroute_translator.goldens"


def _covering(source: str, target: str, kind: str) -> list[Case]:
    return [
        c
        for c in PAIR_CASES
        if c.codec.name == source and c.target is not None and c.target.name == target and c.kind == (kind, "decode")
    ]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_every_ordered_pair_has_a_golden(source: str, target: str, kind: str) -> None:
    assert _covering(source, target, kind), (
        f"no {kind} pair golden {source}→{target}: add tests/goldens/{source}/pair_to_{target}_{kind}/ "
        f'(case.json with "kind": "{kind}", "direction": "decode", "target": "{target}", and the native input), '
        f"then run `{REGENERATE}` and review the outputs"
    )


def test_matrix_is_complete() -> None:
    """One summary of the whole matrix, so a missing format's pairs are listed together."""
    missing = [f"{s}→{t} {k}" for s, t in PAIRS for k in KINDS if not _covering(s, t, k)]
    assert not missing, f"{len(missing)} of {len(PAIRS) * len(KINDS)} pair goldens missing: {missing}"


@pytest.mark.parametrize("case", PAIR_CASES, ids=[c.name for c in PAIR_CASES])
def test_pair_case_is_a_decode_to_another_format_named_after_it(case: Case) -> None:
    assert case.target is not None
    kind, direction = case.kind
    assert direction == "decode", f"{case.name}: a pair case decodes the source ({direction!r} given)"
    assert case.target.name != case.codec.name, f"{case.name}: a pair's target is another format"
    prefix = f"pair_to_{case.target.name}_{kind}"
    assert case.path.name == prefix or case.path.name.startswith(prefix + "_"), (
        f"{case.name}: a {kind} pair case targeting {case.target.name} is named {prefix}[_<behaviour>]"
    )


def test_a_case_named_as_a_pair_names_its_target() -> None:
    """Without ``target`` a ``pair_to_*`` case would silently re-encode with its own codec."""
    wrong = [
        c.name
        for c in CASES
        if c.path.name.startswith("pair_to_")
        and (c.target is None or not c.path.name.startswith(f"pair_to_{c.target.name}_"))
    ]
    assert not wrong, f'named as pairs without a matching "target" in case.json: {wrong}'


def test_the_matrix_spans_the_registered_formats() -> None:
    assert len(FORMATS) == len(CODECS) >= 5
    assert {"openai_chat", "openai_responses", "anthropic_messages", "gemini", "ollama"} <= set(FORMATS)
    assert len(PAIRS) == len(FORMATS) * (len(FORMATS) - 1)
