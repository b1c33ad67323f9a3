"""The one JSON module (STYLE.md rule 9): orjson behind a small wrapper.

``dumps`` returns bytes, as bodies stay bytes end to end. ``JSONDecodeError`` is a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError

__all__ = ["JSONDecodeError", "dumps", "dumps_str", "loads"]


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON. Raises ``JSONDecodeError`` (a ``ValueError``) on malformed input."""
    return orjson.loads(data)


def dumps(obj: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> bytes:
    """Serialise to compact UTF-8 JSON bytes. Non-string dict keys and dataclasses are supported;
    ``default`` converts anything else (raise ``TypeError`` to refuse)."""
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    return orjson.dumps(obj, option=option, default=default)


def dumps_str(obj: Any, *, sort_keys: bool = False) -> str:
    """Like ``dumps`` but returns ``str`` (for logs and headers)."""
    return dumps(obj, sort_keys=sort_keys).decode()
