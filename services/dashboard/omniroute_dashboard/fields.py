"""Validators shared by the routing routers (nodes, custom models, aliases): pydantic ``Annotated`` types whose
error messages name what is wrong, and the masking of secret header values in responses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StrictStr

__all__ = [
    "SECRET_HEADERS",
    "HeaderMap",
    "HttpUrl",
    "ModelId",
    "Prefix",
    "UrlPath",
    "mask_secret",
    "masked_headers",
    "unmask",
]

_PREFIX = re.compile(r"[a-z0-9][a-z0-9._-]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SECRET_WORDS = re.compile(r"(auth|key|token|secret|password|cookie|credential|signature)", re.IGNORECASE)
# header names whose values are always secret; others are masked when their name looks like a credential
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"})


def _prefix(value: str) -> str:
    if not _PREFIX.fullmatch(value):
        raise ValueError("must match ^[a-z0-9][a-z0-9._-]*$ (lower case, no '/'), e.g. 'myllm'")
    return value


def _http_url(value: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://llm.example.com/v1")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return value.rstrip("/")


def _path(value: str) -> str:
    if value and (not value.startswith("/") or any(c.isspace() for c in value)):
        raise ValueError("must start with '/' and contain no whitespace, e.g. /chat/completions")
    return value


def _headers(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if not _HEADER_NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not a valid header name")
        if "\r" in item or "\n" in item:
            raise ValueError(f"the value of {key!r} contains a line break")
    return value


def _model_id(value: str) -> str:
    if not value.strip() or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must be a non-empty model id without whitespace")
    return value


Prefix = Annotated[StrictStr, Field(max_length=64), AfterValidator(_prefix)]
HttpUrl = Annotated[StrictStr, Field(max_length=2048), AfterValidator(_http_url)]
UrlPath = Annotated[StrictStr, Field(max_length=300), AfterValidator(_path)]
HeaderMap = Annotated[dict[StrictStr, StrictStr], Field(max_length=64), AfterValidator(_headers)]
ModelId = Annotated[StrictStr, Field(min_length=1, max_length=300), AfterValidator(_model_id)]


def mask_secret(secret: str) -> str:
    """``sk-...abcd`` for a long secret, ``****`` for a short one (too little left to hide), ``""`` for none."""
    if not secret:
        return ""
    if len(secret) < 12:
        return "****"
    return f"{secret[:3]}...{secret[-4:]}"


def is_secret_header(name: str) -> bool:
    return name.lower() in SECRET_HEADERS or bool(_SECRET_WORDS.search(name))


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers for a response: values of credential-like headers masked (``sk-...abcd``)."""
    return {k: mask_secret(v) if is_secret_header(k) else v for k, v in headers.items()}


def unmask(given: Mapping[str, str], stored: Mapping[str, str]) -> dict[str, str]:
    """``given`` with every value that is exactly the masked form of the stored value replaced by the stored one,
    so a client that sends back what ``GET`` showed does not overwrite a secret with its mask."""
    return {k: stored[k] if _masks(k, v, stored) else v for k, v in given.items()}


def _masks(name: str, value: str, stored: Mapping[str, str]) -> bool:
    return name in stored and is_secret_header(name) and value == mask_secret(stored[name])
