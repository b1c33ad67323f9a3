"""The relay's request parsing: the only fields the edge reads, and refusals in the hub's vocabulary."""

from __future__ import annotations

import pytest

from omniroute_edge.relay import _model_and_stream, _Refusal


def test_model_and_stream_are_read() -> None:
    assert _model_and_stream(b'{"model": "openai/gpt-4o", "stream": true}') == ("openai/gpt-4o", True)
    assert _model_and_stream(b'{"model": "m"}') == ("m", False)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{", ""),
        (b"[]", ""),
        (b'{"messages": []}', "model"),
        (b'{"model": 3}', "model"),
        (b'{"model": ""}', "model"),
        (b'{"model": "m", "stream": "yes"}', "stream"),
    ],
)
def test_bad_bodies_are_400(body: bytes, param: str) -> None:
    with pytest.raises(_Refusal) as exc:
        _model_and_stream(body)
    assert exc.value.error.status == 400
    assert exc.value.error.param == param
