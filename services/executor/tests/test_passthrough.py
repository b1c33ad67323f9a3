"""The same-format stream observer: bytes forwarded as given (or without the usage event asked for on the client's
behalf) however the network splits them, usage and the terminal event recorded, CRLF and LF events alike."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_executor.passthrough import PASSTHROUGH, StreamObserver, _split_events

SPEC = PASSTHROUGH[common_pb2.FORMAT_OPENAI_CHAT]
USAGE = {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}


def _event(doc: object, newline: bytes) -> bytes:
    return b"data: " + jsonx.dumps(doc) + newline + newline


def _stream(newline: bytes, *, with_usage: bool = True) -> tuple[bytes, bytes]:
    """A stream and the same stream without its usage-only event."""
    head = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    # OpenAI sends "usage": null in every chunk once usage is asked for
    content = [
        _event({**head, "choices": [{"index": 0, "delta": {"content": text}}], "usage": None}, newline)
        for text in ("Hel", 'lo "usage" [DONE]')
    ] + [_event({**head, "choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}]}, newline)]
    usage = _event({**head, "choices": [], "usage": USAGE}, newline) if with_usage else b""
    done = b"data: [DONE]" + newline + newline
    return b"".join(content) + usage + done, b"".join(content) + done


def _feed(observer: StreamObserver, data: bytes, cuts: list[int]) -> bytes:
    out, last = [], 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out.append(observer.feed(data[last:cut]))
        last = cut
    out.append(observer.finish())
    return b"".join(out)


@given(st.sampled_from([b"\n", b"\r\n"]), st.lists(st.integers(min_value=0), max_size=12))
def test_bytes_pass_unchanged_and_usage_is_recorded_however_split(newline: bytes, cuts: list[int]) -> None:
    data, _ = _stream(newline)
    observer = StreamObserver(SPEC, drop_usage_event=False)
    assert _feed(observer, data, cuts) == data
    assert observer.complete and observer.content_started
    assert observer.usage is not None and (observer.usage.input_tokens, observer.usage.total_tokens) == (12, 18)


@given(st.sampled_from([b"\n", b"\r\n"]), st.lists(st.integers(min_value=0), max_size=12))
def test_the_usage_event_asked_for_on_the_clients_behalf_is_removed(newline: bytes, cuts: list[int]) -> None:
    data, without_usage = _stream(newline)
    observer = StreamObserver(SPEC, drop_usage_event=True)
    assert _feed(observer, data, cuts) == without_usage
    assert observer.complete and observer.usage is not None and observer.usage.output_tokens == 6


def test_a_stream_cut_before_its_terminal_event_is_incomplete() -> None:
    data, _ = _stream(b"\n", with_usage=False)
    observer = StreamObserver(SPEC, drop_usage_event=False)
    assert _feed(observer, data[: data.index(b"data: [DONE]")], []) == data[: data.index(b"data: [DONE]")]
    assert not observer.complete and observer.usage is None and observer.content_started


@given(st.lists(st.sampled_from([b"data: x", b"\n", b"\r\n", b"\r", b":", b" "]), max_size=20))
def test_events_are_cut_at_the_first_blank_line_of_either_kind(pieces: list[bytes]) -> None:
    buf = b"".join(pieces)
    events, rest = _split_events(buf)
    assert b"".join(events) + rest == buf
    for event in events:
        assert event.endswith((b"\n\n", b"\r\n\r\n"))
        body = event[:-4] if event.endswith(b"\r\n\r\n") else event[:-2]
        # no earlier cut inside the event
        assert b"\n\n" not in body and b"\r\n\r\n" not in body
    assert b"\n\n" not in rest and b"\r\n\r\n" not in rest
