"""Top-level member patching keeps every other byte and agrees with a real JSON parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniroute_core import jsonx
from omniroute_core.bytepatch import patch_members, top_level_spans


def test_spans_cover_each_kind_of_value() -> None:
    body = b'{ "model" : "gpt-4o", "n": 2 , "stream":true,"messages":[{"model":"x"}],"o":{"a":[1]},"z":null }'
    spans = top_level_spans(body)
    assert {k: body[s:e] for k, (s, e) in spans.items()} == {
        b"model": b'"gpt-4o"',
        b"n": b"2",
        b"stream": b"true",
        b"messages": b'[{"model":"x"}]',
        b"o": b'{"a":[1]}',
        b"z": b"null",
    }


def test_nested_model_keys_are_not_top_level() -> None:
    body = b'{"messages":[{"role":"user","content":"say \\"model\\": 1"}],"model":"a/b"}'
    out = patch_members(body, {b"model": b'"b"'})
    assert jsonx.loads(out) == {"messages": [{"role": "user", "content": 'say "model": 1'}], "model": "b"}
    assert out.startswith(body[: body.index(b'"model":"a/b"')])


def test_absent_member_is_added_and_empty_object_stays_valid() -> None:
    assert jsonx.loads(patch_members(b"{}", {b"model": b'"m"'})) == {"model": "m"}
    out = patch_members(b' {"stream": true}', {b"stream_options": b'{"include_usage":true}'})
    assert jsonx.loads(out) == {"stream": True, "stream_options": {"include_usage": True}}


@pytest.mark.parametrize("model", ["", "x", "a/b/c", 'quote"inside', "üñï"])
def test_replacement_matches_parser(model: str) -> None:
    body = jsonx.dumps({"model": "orig", "messages": [{"role": "user", "content": "hi"}], "temperature": 0})
    out = patch_members(body, {b"model": jsonx.dumps(model)})
    assert jsonx.loads(out)["model"] == model


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.text(max_size=10))
def test_any_object_round_trips(doc: dict[str, object], model: str) -> None:
    body = jsonx.dumps(doc)
    out = patch_members(body, {b"model": jsonx.dumps(model)})
    assert jsonx.loads(out) == {**doc, "model": model}
