"""Patching JSON bytes without re-encoding them (STYLE rule 3: the same-format path patches bytes).

Re-encoding would reorder nothing with orjson, but it would still normalize whitespace, escapes and number
spellings, and cost a full serialization of bodies that can carry megabytes of base64 images.
"""

from __future__ import annotations

import re

from omniroute_core import jsonx

__all__ = ["replace_top_level_string"]

# A JSON string (unrolled-loop form, linear even on multi-megabyte strings) or a bracket.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]')
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")


def replace_top_level_string(body: bytes, key: str, value: str) -> bytes | None:
    """``body`` (a JSON object) with every top-level ``key`` set to the string ``value``, other bytes untouched.

    Returns ``None`` when there is nothing to patch safely (the key is absent, spelled with escapes, or its
    value is not a string); the caller then re-encodes.
    """
    raw_key = jsonx.dumps(key)
    spans: list[tuple[int, int]] = []
    depth = 0
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
        elif depth == 1 and token == raw_key:
            colon = _COLON.match(body, match.end())
            if colon is None:
                continue  # a string value that happens to equal the key's name
            string = _STRING.match(body, colon.end())
            if string is None:
                return None
            spans.append(string.span())
    if not spans:
        return None
    encoded = jsonx.dumps(value)
    parts: list[bytes] = []
    pos = 0
    for start, end in spans:
        parts += [body[pos:start], encoded]
        pos = end
    parts.append(body[pos:])
    return b"".join(parts)
