from __future__ import annotations

import pytest

from omniroute_translator.codecs.sse import SseEvent, SseParser, format_event


def _parse(*pieces: bytes) -> list[SseEvent]:
    parser = SseParser()
    events = [e for p in pieces for e in parser.feed(p)]
    return events + parser.end()


def test_events_with_fields_comments_and_multiline_data() -> None:
    body = b": comment\nevent: ping\nid: 1\nretry: 5\ndata: a\ndata:b\n\ndata: c\n\n"
    assert _parse(body) == [SseEvent("ping", "a\nb"), SseEvent("", "c")]


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_every_line_end(line_end: bytes) -> None:
    body = b"data: x" + line_end + line_end + b"data: y" + line_end + line_end
    assert _parse(body) == [SseEvent("", "x"), SseEvent("", "y")]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\ndata: y\r\n\r\n") == [SseEvent("", "x"), SseEvent("", "y")]


def test_utf8_sequence_split_across_batches() -> None:
    body = "data: 👋é\n\n".encode()
    assert _parse(*(body[i : i + 1] for i in range(len(body)))) == [SseEvent("", "👋é")]


def test_end_delivers_an_event_missing_its_blank_line() -> None:
    assert _parse(b"data: last") == [SseEvent("", "last")]
    assert _parse(b"data: last\n") == [SseEvent("", "last")]
    assert _parse(b"data: last\r") == [SseEvent("", "last")]


def test_field_without_data_dispatches_nothing() -> None:
    assert _parse(b"event: x\n\n: only a comment\n\n") == []


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert _parse(b"data: \xff\n\n") == [SseEvent("", "\ufffd")]


def test_format_event() -> None:
    assert format_event(b"{}") == b"data: {}\n\n"
    assert format_event(b"{}", "error") == b"event: error\ndata: {}\n\n"
