"""Shared pieces of the management calls: their errors and the parsing of query parameters and JSON bodies.

Handlers raise :class:`BadRequest` (the gRPC adapter answers INVALID_ARGUMENT, the dashboard a 400) or
:class:`NotFound` (NOT_FOUND, a 404); messages name the offending field and are safe to show to the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx

__all__ = ["BadRequest", "NotFound", "json_body", "param_int", "param_time", "param_window"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class BadRequest(ValueError):
    """The caller's input is invalid; ``param`` names the field when there is one."""

    def __init__(self, message: str, param: str = "") -> None:
        super().__init__(message)
        self.param = param


class NotFound(LookupError):
    """What the caller asked for does not exist."""


def json_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; ``BadRequest`` when empty, malformed or not an object."""
    if not raw.strip():
        raise BadRequest("Request body must be a JSON object")
    try:
        doc = jsonx.loads(raw)
    except jsonx.JSONDecodeError as exc:
        raise BadRequest(f"Malformed JSON body: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadRequest("Request body must be a JSON object")
    return doc


def param_int(params: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter within ``[low, high]``; ``BadRequest`` otherwise."""
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: must be an integer", name) from None
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be between {low} and {high}", name)
    return value


def param_time(params: Mapping[str, str], name: str) -> dt.datetime | None:
    """A time parameter: ISO 8601 (naive = UTC) or Unix milliseconds; ``None`` when absent."""
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        if raw.lstrip("-").isdigit():
            value = _EPOCH + dt.timedelta(milliseconds=int(raw))
        else:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise BadRequest(f"{name}: must be an ISO 8601 time or Unix milliseconds", name) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def param_window(params: Mapping[str, str], now: dt.datetime, default: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    """``(since, until)`` from ``from``/``to`` (or ``since``/``until``); ``since`` defaults to ``until - default``.
    ``BadRequest`` when the range is inverted."""
    until = param_time(params, "to") or param_time(params, "until") or now
    since = param_time(params, "from") or param_time(params, "since") or until - default
    if since > until:
        raise BadRequest("from: must not be after to", "from")
    return since, until
