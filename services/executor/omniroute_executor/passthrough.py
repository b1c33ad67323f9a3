"""The same-format fast path: bytes pass through, and only usage and the end of the stream are observed.

When client and provider speak the same format the translator is not called (DESIGN.md: the fast path must not
pay for translation it does not need). The executor still has to meter the request, so it keeps one small table
per pass-through format: where usage lives, and what the stream's terminal event looks like. That table is the
only wire-format knowledge outside the translator, and it is data, not code paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx

__all__ = ["PASSTHROUGH", "PassthroughSpec", "StreamObserver", "usage_from", "wants_stream_usage"]


@dataclass(frozen=True, slots=True)
class PassthroughSpec:
    """How to meter one format without translating it. Usage paths are tuples of keys into the JSON object."""

    usage_key: str
    fields: Mapping[str, tuple[str, ...]]
    terminal: bytes  # the data line that ends a stream
    stream_usage_option: bytes  # raw JSON member that asks the provider to report usage in a stream


PASSTHROUGH: Mapping[common_pb2.Format.ValueType, PassthroughSpec] = {
    common_pb2.FORMAT_OPENAI_CHAT: PassthroughSpec(
        usage_key="usage",
        fields={
            "input_tokens": ("prompt_tokens",),
            "output_tokens": ("completion_tokens",),
            "cached_input_tokens": ("prompt_tokens_details", "cached_tokens"),
            "reasoning_tokens": ("completion_tokens_details", "reasoning_tokens"),
            "total_tokens": ("total_tokens",),
        },
        terminal=b"[DONE]",
        stream_usage_option=b"stream_options",
    ),
}


def _dig(doc: Any, path: tuple[str, ...]) -> int:
    for key in path:
        if not isinstance(doc, dict):
            return 0
        doc = doc.get(key)
    return int(doc) if isinstance(doc, int | float) else 0


def usage_from(spec: PassthroughSpec, doc: Any) -> common_pb2.Usage | None:
    """The usage object of a parsed response or stream event, or None when it carries none."""
    raw = doc.get(spec.usage_key) if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        return None
    usage = common_pb2.Usage(**{name: _dig(raw, path) for name, path in spec.fields.items()})
    if not usage.total_tokens:
        usage.total_tokens = usage.input_tokens + usage.output_tokens
    return usage


def wants_stream_usage(spec: PassthroughSpec, body: bytes, parsed: Mapping[str, Any]) -> tuple[bytes | None, bool]:
    """The raw value to set for the stream-usage option, and whether the client asked for usage itself.

    Returns ``(None, True)`` when the client already asked (nothing to patch).
    """
    current = parsed.get(spec.stream_usage_option.decode())
    if isinstance(current, dict) and current.get("include_usage") is True:
        return None, True
    merged = dict(current) if isinstance(current, dict) else {}
    merged["include_usage"] = True
    return jsonx.dumps(merged), False


class StreamObserver:
    """Watches a pass-through SSE stream, fed bytes split anywhere.

    It records the usage and whether the terminal event arrived. When usage reporting was requested on the
    client's behalf, the usage-only event it produces is removed (the client did not ask for it); otherwise the
    bytes are returned exactly as given, without waiting for event boundaries.
    """

    def __init__(self, spec: PassthroughSpec, *, drop_usage_event: bool) -> None:
        self._spec = spec
        self._drop = drop_usage_event
        self._buf = b""
        self.usage: common_pb2.Usage | None = None
        self.complete = False
        self.content_started = False

    def feed(self, data: bytes) -> bytes:
        """Observe ``data``; return the bytes to forward now."""
        self._buf += data
        events, self._buf = _split_events(self._buf)
        if not self._drop:
            for event in events:
                self._observe(event)
            return data
        return b"".join([event for event in events if self._observe(event)])

    def finish(self) -> bytes:
        """End of the upstream body: observe and return whatever partial event was held back."""
        tail, self._buf = self._buf, b""
        if tail.strip() and self._observe(tail) and self._drop:
            return tail
        return b""

    def _observe(self, event: bytes) -> bool:
        """Record what ``event`` says; False when it must be dropped."""
        if self.content_started and b'"usage"' not in event and self._spec.terminal not in event:
            return True  # more content: nothing to record (the loop below would conclude the same)
        for line in event.splitlines():
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == self._spec.terminal:
                self.complete = True
                return True
            if b'"usage"' in payload:
                return self._observe_usage(payload)
            if payload:
                self.content_started = True
        return True

    def _observe_usage(self, payload: bytes) -> bool:
        try:
            doc = jsonx.loads(payload)
        except jsonx.JSONDecodeError:
            return True
        usage = usage_from(self._spec, doc)
        if usage is None:
            self.content_started = True
            return True
        self.usage = usage
        only_usage = isinstance(doc, dict) and not doc.get("choices")
        if not only_usage:
            self.content_started = True
        return not (self._drop and only_usage)


def _split_events(buf: bytes) -> tuple[list[bytes], bytes]:
    """Complete SSE events (each with its blank-line terminator) and the incomplete rest."""
    if b"\r" not in buf:  # the usual LF-only stream: the same cuts as the loop below, in one call
        *complete, rest = buf.split(b"\n\n")
        return [event + b"\n\n" for event in complete], rest
    events: list[bytes] = []
    start = 0
    while True:
        lf = buf.find(b"\n\n", start)
        crlf = buf.find(b"\r\n\r\n", start)
        if lf < 0 and crlf < 0:
            break
        end = crlf + 4 if crlf >= 0 and (lf < 0 or crlf < lf) else lf + 2
        events.append(buf[start:end])
        start = end
    return events, buf[start:]
