from __future__ import annotations

import pytest

from omniroute_core import jsonx
from omniroute_translator.rawjson import replace_top_level_string


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model":"a","messages":[]}', b'{"model":"b","messages":[]}'),
        (
            b'{ "messages": [{"model": "nested"}],\n  "model" :\t"a" }',
            b'{ "messages": [{"model": "nested"}],\n  "model" :\t"b" }',
        ),
        (b'{"x": "model", "model": "a"}', b'{"x": "model", "model": "b"}'),
        (b'{"x": "\\"model\\":", "model": "a\\"q"}', b'{"x": "\\"model\\":", "model": "b"}'),
        (b'{"model": "model"}', b'{"model": "b"}'),
        (b'{"model":"a","model":"c"}', b'{"model":"b","model":"b"}'),
    ],
)
def test_patches_only_top_level_model(body: bytes, expected: bytes) -> None:
    assert replace_top_level_string(body, "model", "b") == expected


@pytest.mark.parametrize(
    "body",
    [b'{"messages": []}', b'{"model": null}', b'{"model": 5}', b'{"mod\\u0065l": "a"}', b'{"o": {"model": "a"}}'],
)
def test_returns_none_when_nothing_safe_to_patch(body: bytes) -> None:
    assert replace_top_level_string(body, "model", "b") is None


def test_value_is_json_escaped_and_the_rest_untouched() -> None:
    image = "A" * 2_000_000
    body = (
        b'{"model":"a",  "messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"'
        + image.encode()
        + b'"}}]}]}'
    )
    out = replace_top_level_string(body, "model", 'we"ird/é')
    assert out is not None
    assert jsonx.loads(out)["model"] == 'we"ird/é'
    assert out.endswith(body[len(b'{"model":"a"') :])
