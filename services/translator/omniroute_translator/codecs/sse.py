"""Incremental Server-Sent Events parsing, shared by every SSE-based format.

Follows the WHATWG event-stream rules where providers follow them (``\\r\\n``, ``\\r`` and ``\\n`` line ends,
``:`` comments, one optional space after the colon, multi-line ``data``), and is lenient where they do not:
a last event without its closing blank line is still delivered by :meth:`SseParser.end`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser", "format_event"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event: its ``event`` field (empty when absent) and its data lines joined by ``\\n``."""

    event: str
    data: str


class SseParser:
    """Bytes in, complete events out. Input may be split anywhere, including inside a UTF-8 sequence or between
    the ``\\r`` and ``\\n`` of a CRLF: only whole lines are decoded, and a trailing ``\\r`` waits for the next
    byte before it counts as a line end."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._event = ""
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[SseEvent]:
        self._buf += data
        events: list[SseEvent] = []
        pos = 0
        for match in _LINE_END.finditer(self._buf):
            if match.group() == b"\r" and match.end() == len(self._buf):
                break  # may be the first half of a CRLF split across batches
            self._line(bytes(self._buf[pos : match.start()]), events)
            pos = match.end()
        del self._buf[:pos]
        return events

    def end(self) -> list[SseEvent]:
        """Flush at end of input: an unterminated last line, then an event missing its blank line."""
        events: list[SseEvent] = []
        if self._buf:
            line = bytes(self._buf).rstrip(b"\r")
            self._buf.clear()
            self._line(line, events)
        self._dispatch(events)
        return events

    def _line(self, raw: bytes, events: list[SseEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        # a line is whole, so no UTF-8 sequence is cut; invalid bytes from a broken upstream become U+FFFD
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value

    def _dispatch(self, events: list[SseEvent]) -> None:
        if self._data:
            events.append(SseEvent(self._event, "\n".join(self._data)))
        self._event = ""
        self._data = []


def format_event(data: bytes, event: str = "") -> bytes:
    """One SSE event with a single-line ``data`` payload (compact JSON never contains a newline)."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"
