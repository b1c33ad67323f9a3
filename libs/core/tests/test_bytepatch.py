"""Top-level member patching keeps every other byte and agrees with a real JSON parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniroute_core import bytepatch, jsonx
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


# -- with the parsed body's keys: found without the scan when that is certain, the scan's result either way --

MODEL = {b"model": b'"gpt-4o"'}
USAGE_OPTION = {b"model": b'"gpt-4o"', b"stream_options": b'{"include_usage":true}'}


def _patched_both_ways(body: bytes, values: dict[bytes, bytes]) -> bytes:
    keys = jsonx.loads(body)
    direct = patch_members(body, values, keys)
    assert direct == patch_members(body, values)
    return direct


def test_the_common_body_is_patched_without_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(body: bytes) -> dict[bytes, tuple[int, int]]:
        raise AssertionError("scanned")

    body = b'{"messages":[{"role":"user","content":"hi \\"model\\""}], "model" :  "openai/gpt-4o" ,"n":1}'
    keys = jsonx.loads(body)
    monkeypatch.setattr(bytepatch, "top_level_spans", no_scan)
    out = patch_members(body, USAGE_OPTION, keys)
    assert out == b'{"stream_options":{"include_usage":true},' + body[1:].replace(b'"openai/gpt-4o"', b'"gpt-4o"')
    assert patch_members(b'{"model":null}', MODEL, {"model": None}) == b'{"model":"gpt-4o"}'
    assert patch_members(b'{"model":-1.5e3 }', MODEL, {"model": -1500.0}) == b'{"model":"gpt-4o" }'


@pytest.mark.parametrize(
    "body",
    [
        b'{"messages":[{"role":"model","content":"x"}],"model":"a"}',  # the literal also occurs as a value
        b'{"tools":[{"model":"nested"}],"model":"a"}',  # and as a nested key
        b'{"model":"a","model":"b"}',  # a repeated key: the last one wins
        b'{"mod\\u0065l":"a","messages":[{"model":"nested"}]}',  # the key spelled with an escape
        b'{"model":"a","x":"caf\\u00e9 \\u0041"}',  # an escaped ASCII character elsewhere
        b'{"model":{"id":"a"}}',  # an object value
        b'{"model":["a"],"stream_options":{"include_usage":false}}',  # array and object values
        b'{"stream_options":{"include_usage":false},"model":"a"}',
        b'{"say \\"model":"a","model":"b"}',  # the literal inside another key
    ],
)
def test_uncertain_bodies_get_the_scans_result(body: bytes) -> None:
    out = _patched_both_ways(body, USAGE_OPTION)
    assert jsonx.loads(out)["stream_options"] == {"include_usage": True}


def test_keys_outside_the_plain_alphabet_are_scanned() -> None:
    body = b'{"a-b":1,"model":"x"}'
    assert _patched_both_ways(body, {b"a-b": b"2"}) == b'{"a-b":2,"model":"x"}'


def _spaced(doc: object) -> bytes:
    """JSON with whitespace around every delimiter."""
    if isinstance(doc, dict):
        return b"{\n " + b" ,\n ".join(jsonx.dumps(k) + b" : " + _spaced(v) for k, v in doc.items()) + b"\n}"
    if isinstance(doc, list):
        return b"[ " + b" , ".join(_spaced(v) for v in doc) + b" ]"
    return jsonx.dumps(doc)


def _ascii(body: bytes) -> bytes:
    """\\uXXXX for every non-ASCII character, as Python's json module sends by default."""
    out: list[str] = []
    for c in body.decode():
        raw = c.encode("utf-16-be")
        out.extend([c] if ord(c) < 128 else [f"\\u{raw[i : i + 2].hex()}" for i in range(0, len(raw), 2)])
    return "".join(out).encode()


def _encode(doc: object, how: str) -> bytes:
    body = jsonx.dumps(doc)
    if how == "ascii":
        return _ascii(body)
    if how == "spaced":
        return _spaced(doc)
    if how == "escaped-key":
        return body.replace(b'"model"', b'"mod\\u0065l"')
    return body


@given(
    st.dictionaries(st.sampled_from(["model", "messages", "stream_options", "n", "x"]), json_values, max_size=5),
    st.sampled_from(["plain", "ascii", "spaced", "escaped-key"]),
    st.booleans(),
)
def test_direct_spans_agree_with_the_scan(doc: dict[str, object], how: str, nested_model: bool) -> None:
    if nested_model:
        doc = {**doc, "messages": [{"model": "nested", "content": "model"}]}
    _patched_both_ways(_encode(doc, how), USAGE_OPTION)
