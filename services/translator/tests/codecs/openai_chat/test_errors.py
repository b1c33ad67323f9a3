from __future__ import annotations

from typing import Any

import pytest

from omniroute_core.errors import hub_error
from omniroute_translator.codecs.openai_chat.errors import error_from_envelope, render_error, render_stream_error


@pytest.mark.parametrize(
    ("doc", "status", "expected"),
    [
        ({"error": {"message": "bad", "type": "invalid_request_error", "param": "x"}}, 0, (400, "bad", "x")),
        ({"error": {"message": "slow", "type": "tokens", "code": "rate_limit_exceeded"}}, 0, (429, "slow", "")),
        ({"error": {"message": "who", "code": "invalid_api_key"}}, 0, (401, "who", "")),
        ({"error": {"message": "busy", "code": 503}}, 0, (503, "busy", "")),
        ({"error": {"message": "busy", "code": "429"}}, 0, (429, "busy", "")),
        ({"error": "plain text error"}, 0, (502, "plain text error", "")),
        ({"message": "top-level message", "status": 404}, 0, (404, "top-level message", "")),
        ({"error": {"message": "given"}}, 418, (418, "given", "")),
        ({"error": None}, 0, (502, "upstream error", "")),
        ({"error": {"message": "odd status", "status": 200}}, 0, (502, "odd status", "")),
    ],
)
def test_error_from_envelope(doc: dict[str, Any], status: int, expected: tuple[int, str, str]) -> None:
    err = error_from_envelope(doc, status)
    assert (err.status, err.message, err.param) == expected


def test_numeric_code_is_not_kept_as_code() -> None:
    assert error_from_envelope({"error": {"message": "m", "code": "429"}}).code == ""
    assert error_from_envelope({"error": {"message": "m", "code": "rate_limit_exceeded"}}).code == (
        "rate_limit_exceeded"
    )


def test_render() -> None:
    err = hub_error(400, "no", param="model")
    assert render_error(err) == b'{"error":{"message":"no","type":"invalid_request_error","param":"model","code":null}}'
    assert render_stream_error(err) == b"data: " + render_error(err) + b"\n\n"
