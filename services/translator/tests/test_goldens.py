"""Golden cases (STYLE rule 4): every case matches its files, streams do not depend on how bytes were split, and
what the OpenAI codec emits validates against OpenAI's own OpenAPI description."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from omniroute_core import jsonx
from omniroute_translator.goldens import DEFAULT_ROOT, Case, check, find_cases, main, outputs, pretty, regenerate

CASES = list(find_cases())
STREAM_DECODE = [c for c in CASES if c.kind == ("stream", "decode")]
REGENERATE = "uv run python -m omniroute_translator.goldens"


def _ids(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_case_matches_golden(case: Case) -> None:
    for name, content in outputs(case).items():
        path = case.path / name
        assert path.exists(), f"{case.name}: {name} missing; run `{REGENERATE}`"
        assert path.read_bytes() == content, f"{case.name}: {name} differs; review, then run `{REGENERATE}`"


def _random_pieces(data: bytes, rng: random.Random) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        size = rng.choice((1, 1, 2, 3, rng.randint(1, 16), rng.randint(1, 256)))
        yield data[pos : pos + size]
        pos += size


@pytest.mark.parametrize("case", STREAM_DECODE, ids=_ids(STREAM_DECODE))
@pytest.mark.parametrize("seed", range(25))
def test_stream_split_at_random_boundaries(case: Case, seed: int) -> None:
    data = case.input()
    rng = random.Random(f"{case.name}:{seed}")
    assert outputs(case, _random_pieces(data, rng)) == outputs(case)


@pytest.mark.parametrize("case", STREAM_DECODE, ids=_ids(STREAM_DECODE))
def test_stream_byte_by_byte(case: Case) -> None:
    data = case.input()
    assert outputs(case, (data[i : i + 1] for i in range(len(data)))) == outputs(case)


def test_cases_cover_the_required_behaviours() -> None:
    names = {c.path.name for c in CASES if c.codec.name == "openai_chat"}
    required = {
        "simple_text",
        "system_prompt",
        "tools_parallel_calls",
        "tool_result",
        "image_url",
        "json_schema",
        "stop_sequences",
        "usage_cached_reasoning",
        "think_tags_to_reasoning",
        "stream_text",
        "stream_tool_call_deltas",
        "stream_usage_chunk",
        "stream_think_split_tags",
        "stream_error_event",
        "stream_missing_done",
    }
    assert required <= names, required - names
    assert {c.kind for c in CASES} == {
        ("request", "decode"),
        ("request", "encode"),
        ("response", "decode"),
        ("response", "encode"),
        ("stream", "decode"),
        ("stream", "encode"),
        ("error", "render"),
    }


def test_check_and_regenerate_round_trip(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_ROOT / "openai_chat" / "stream_text", tmp_path / "openai_chat" / "stream_text")
    case_dir = tmp_path / "openai_chat" / "stream_text"
    assert check(tmp_path) == []
    (case_dir / "out.sse").write_bytes(b"tampered")
    (case_dir / "leftover.json").write_bytes(b"{}")
    (case_dir / "end.json").unlink()
    assert sorted(check(tmp_path)) == [
        "openai_chat/stream_text/end.json",
        "openai_chat/stream_text/leftover.json (stale)",
        "openai_chat/stream_text/out.sse",
    ]
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert len(regenerate(tmp_path)) == 3
    assert main(["--check", "--root", str(tmp_path)]) == 0
    assert not (case_dir / "leftover.json").exists()


def test_pretty_is_json_and_stable() -> None:
    value = {"a": [1, {"b": None}, []], "c": {}, "d": "é\n", "e": [True]}
    text = pretty(value)
    assert jsonx.loads(text) == value
    assert text.startswith('{\n  "a": [\n    1,')


def test_unknown_case_kind_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "openai_chat" / "odd").mkdir(parents=True)
    (tmp_path / "openai_chat" / "odd" / "case.json").write_bytes(b'{"kind": "poem", "direction": "decode"}')
    with pytest.raises(ValueError, match="unknown kind"):
        check(tmp_path)
