"""Patch top-level members of a JSON object in place, without re-encoding the rest (STYLE.md rule 3).

The same-format fast path only rewrites ``model`` (and may add ``stream_options``); every other byte of the
client's body reaches the provider untouched. Strings are skipped by one regular expression, so the cost grows
with the number of tokens, not with the length of long prompt strings.

That scan still walks every token of a long conversation in Python. A caller that has parsed the body passes its
top-level keys, and a member is then found by a byte search when that is certain to land on the same bytes as the
scan (see :func:`_direct_spans`); otherwise the scan runs.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping

__all__ = ["patch_members", "top_level_spans"]

# a string (unrolled: runs of plain bytes between escapes, which the regex engine matches fast), or a delimiter
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]', re.DOTALL)
_WS = b" \t\r\n"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SCALAR = re.compile(rb"[^ \t\r\n,}\]]+")  # a number, true, false or null
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_ESCAPED_ASCII = re.compile(rb"\\u00[2-7][0-9a-fA-F]")  # a printable ASCII character written as \u00XX


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


def _direct_spans(
    body: bytes, values: Mapping[bytes, bytes], keys: Container[str]
) -> dict[bytes, tuple[int, int]] | None:
    """The spans :func:`top_level_spans` would give for the keys of ``values``, found without the scan; None when
    that is not certain (the caller scans).

    ``keys`` are the top-level keys of the parsed body. A key made of ``[A-Za-z0-9_]`` that is not among them has
    no span (the scan would find none either). One that is must be written somewhere as the literal ``"key"``
    when no printable ASCII character of the body is written as a ``\\u00XX`` escape (no other escape spells
    these characters), so when that literal occurs exactly once, that occurrence is the top-level key and no
    duplicate of it follows. Its value is read when it is a string or a literal; an object or array value, a
    repeated literal or such an escape anywhere leaves the decision to the scan.
    """
    spans: dict[bytes, tuple[int, int]] = {}
    checked_escapes = False
    for key in values:
        if not key.replace(b"_", b"a").isalnum():  # [A-Za-z0-9_]+ (bytes.isalnum is ASCII only)
            return None
        if key.decode() not in keys:
            continue
        if not checked_escapes:
            if _ESCAPED_ASCII.search(body) is not None:
                return None
            checked_escapes = True
        token = b'"' + key + b'"'
        at = body.find(token)
        if at < 0 or body.find(token, at + len(token)) >= 0:
            return None
        colon = _COLON.match(body, at + len(token))
        if colon is None:  # a value, not a key: ``keys`` are not this body's
            return None
        start = colon.end()
        first = body[start : start + 1]
        if first in (b"{", b"[", b""):
            return None
        value = (_STRING if first == b'"' else _SCALAR).match(body, start)
        if value is None:
            return None
        spans[key] = (start, value.end())
    return spans


def patch_members(body: bytes, values: Mapping[bytes, bytes], keys: Container[str] | None = None) -> bytes:
    """Replace (or add, when absent) top-level members. ``values`` maps a key to its new raw JSON value.

    ``keys``: the top-level keys of the parsed body (its dict), when the caller has parsed it; members are then
    usually found without scanning the body (same result)."""
    spans = _direct_spans(body, values, keys) if keys is not None else None
    if spans is None:
        spans = top_level_spans(body)
    edits = [(spans[k], v) for k, v in values.items() if k in spans]
    edits.sort(reverse=True)  # the last span first, so the earlier ones keep their offsets (spans never overlap)
    out = body
    for (start, end), value in edits:
        out = out[:start] + value + out[end:]
    missing = [(k, v) for k, v in values.items() if k not in spans] if len(edits) < len(values) else None
    if missing:
        brace = out.index(b"{") + 1
        rest = out[brace:].lstrip(_WS)
        sep = b"" if rest.startswith(b"}") else b","
        added = b",".join(b'"' + k + b'":' + v for k, v in missing)
        out = out[:brace] + added + sep + out[brace:]
    return out
