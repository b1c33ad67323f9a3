"""Small typed accessors over decoded JSON."""

from __future__ import annotations

from typing import Any

__all__ = ["obj"]


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty dict (absent and malformed fields read the same)."""
    return value if isinstance(value, dict) else {}
