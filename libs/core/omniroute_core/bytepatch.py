"""Patch top-level members of a JSON object in place, without re-encoding the rest (STYLE.md rule 3).

The same-format fast path only rewrites ``model`` (and may add ``stream_options``); every other byte of the
client's body reaches the provider untouched. Strings are skipped by one regular expression, so the cost grows
with the number of tokens, not with the length of long prompt strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["patch_members", "top_level_spans"]

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]', re.DOTALL)
_WS = b" \t\r\n"


def top_level_spans(body: bytes) -> dict[bytes, tuple[int, int]]:
    """Map each top-level key (raw JSON string bytes, without quotes) to the byte span of its value.

    ``body`` must be a JSON object (callers parse it first, so it is known to be valid). When a key repeats,
    the last one wins, as in every mainstream JSON parser.
    """
    spans: dict[bytes, tuple[int, int]] = {}
    depth = 0
    key: bytes | None = None
    expecting_key = False
    value_start = -1
    last_end = -1
    for m in _TOKEN.finditer(body):
        tok = m.group()
        first = tok[0]
        if first == 0x22:  # '"'
            if depth == 1 and expecting_key:
                key = tok[1:-1]
                expecting_key = False
            elif depth == 1 and key is not None and value_start < 0:
                value_start = m.start()
            last_end = m.end()
        elif tok in (b"{", b"["):
            if depth == 0:
                expecting_key = True
            elif depth == 1 and key is not None and value_start < 0:
                value_start = m.start()
            depth += 1
        elif tok in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                _close(body, spans, key, value_start, last_end, m.start())
            last_end = m.end()
        elif tok == b":":
            if depth == 1:
                value_start = -1
                last_end = m.end()
        elif tok == b"," and depth == 1:
            _close(body, spans, key, value_start, last_end, m.start())
            key, value_start, expecting_key = None, -1, True
    return spans


def _close(
    body: bytes, spans: dict[bytes, tuple[int, int]], key: bytes | None, start: int, last_end: int, stop: int
) -> None:
    if key is None:
        return
    if start < 0:
        # a scalar literal (number, true, false, null): it lies between the colon and the delimiter
        raw_start = last_end
        start = raw_start + (len(body[raw_start:stop]) - len(body[raw_start:stop].lstrip(_WS)))
        end = stop - (len(body[start:stop]) - len(body[start:stop].rstrip(_WS)))
    else:
        end = stop - (len(body[start:stop]) - len(body[start:stop].rstrip(_WS)))
    spans[key] = (start, end)


def patch_members(body: bytes, values: Mapping[bytes, bytes]) -> bytes:
    """Replace (or add, when absent) top-level members. ``values`` maps a key to its new raw JSON value."""
    spans = top_level_spans(body)
    edits = sorted(((spans[k], v) for k, v in values.items() if k in spans), key=lambda e: e[0][0], reverse=True)
    out = body
    for (start, end), value in edits:
        out = out[:start] + value + out[end:]
    missing = [(k, v) for k, v in values.items() if k not in spans]
    if missing:
        brace = out.index(b"{") + 1
        rest = out[brace:].lstrip(_WS)
        sep = b"" if rest.startswith(b"}") else b","
        added = b",".join(b'"' + k + b'":' + v for k, v in missing)
        out = out[:brace] + added + sep + out[brace:]
    return out
