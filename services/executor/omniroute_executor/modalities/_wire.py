"""Provider dialects of the embeddings and image operations: pure functions from the client's OpenAI-format body
to a provider request, and from the provider's reply back to OpenAI's shape.

Why here and not in the translator: the only client format of these operations is OpenAI's, so there is no
hub to translate through (each dialect is one mapping, not an N-by-M pair), most providers speak OpenAI's own
shape (the body passes through with ``model`` patched in the raw bytes, like the chat fast path), and the
transcription flow that needs the same kind of knowledge must also drive the provider's protocol (upload, poll),
which only the executor can. A translator round trip would add a gRPC hop (~1 ms here) to fill a few fields.
The module is pure like a codec (import-linter forbids I/O libraries in this package's pure modules): the clock
value it needs is passed in.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.bytepatch import patch_members
from omniroute_core.catalog import ProviderSpec
from omniroute_core.errors import hub_error

__all__ = [
    "HTTP_DIALECTS",
    "JSON",
    "HttpDialect",
    "Source",
    "WireError",
    "WireReply",
    "WireRequest",
    "usage_of",
]

JSON = "application/json"


class WireError(Exception):
    """The request cannot be sent in this dialect, or the reply cannot be read; ``error`` says why."""

    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, slots=True)
class Source:
    """The client's request: its body untouched, the parsed form of it (a JSON object, or a
    :class:`~omniroute_core.multipart.Form`) and its media type."""

    body: bytes
    parsed: Any
    content_type: str = JSON


@dataclass(frozen=True, slots=True)
class WireRequest:
    """What to send: the body and its media type, extra query parameters, and the media type asked for."""

    body: bytes | memoryview
    content_type: str = JSON
    query: Mapping[str, str] = field(default_factory=dict)
    accept: str = JSON
    response_format: str = ""  # what the client asked for, when the reply must be shaped by it


@dataclass(frozen=True, slots=True)
class WireReply:
    body: bytes
    content_type: str
    usage: common_pb2.Usage | None


@dataclass(frozen=True, slots=True)
class HttpDialect:
    """One operation of one provider dialect over HTTP. ``passthrough``: the provider speaks OpenAI's shape, so a
    JSON error body it sends is relayed as it is."""

    request: Callable[[ProviderSpec, str, str, Source], WireRequest]
    reply: Callable[[WireRequest, bytes, str, int], WireReply]
    passthrough: bool = False


def usage_of(doc: Any) -> common_pb2.Usage | None:
    """OpenAI's usage object in either vocabulary (``prompt_tokens`` for embeddings, ``input_tokens`` /
    ``output_tokens`` for image and transcription models); None when the reply has none."""
    raw = doc.get("usage") if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        return None

    def num(*names: str) -> int:
        for name in names:
            value = raw.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return 0

    usage = common_pb2.Usage(
        input_tokens=num("prompt_tokens", "input_tokens"), output_tokens=num("completion_tokens", "output_tokens")
    )
    usage.total_tokens = num("total_tokens") or usage.input_tokens + usage.output_tokens
    return usage


# -- OpenAI's own shape (OpenAI, Mistral, Nebius, NVIDIA, Fireworks and Together embeddings, xAI images) -----


def _openai_request(spec: ProviderSpec, operation: str, model: str, source: Source) -> WireRequest:
    parsed: Mapping[str, Any] = source.parsed
    """``model`` patched in the raw bytes; catalog defaults added where absent. Members the provider refuses are
    removed, which needs a re-encoding (only for the providers whose catalog entry says so)."""
    omit = [name for name in spec.request_omit.get(operation, ()) if name in parsed]
    defaults = {k: v for k, v in spec.request_defaults.get(operation, {}).items() if k not in parsed}
    if omit:
        doc = {k: v for k, v in parsed.items() if k not in omit}
        return WireRequest(jsonx.dumps({**doc, **defaults, "model": model}))
    members = {b"model": jsonx.dumps(model)}
    members.update({k.encode(): jsonx.dumps(v) for k, v in defaults.items()})
    return WireRequest(patch_members(source.body, members, parsed))


def _openai_reply(request: WireRequest, body: bytes, content_type: str, now: int) -> WireReply:
    try:
        usage = usage_of(jsonx.loads(body))
    except jsonx.JSONDecodeError:
        usage = None
    return WireReply(body, content_type or JSON, usage)


# -- Together images: width/height instead of size, "base64" instead of "b64_json" --------------------------

_OPENAI_ONLY_IMAGE_FIELDS = ("size", "quality", "style", "user", "background", "moderation", "output_compression")


def _size(parsed: Mapping[str, Any]) -> tuple[int, int] | None:
    size = parsed.get("size")
    if size in (None, "auto"):
        return None
    width, sep, height = str(size).partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise WireError(hub_error(400, f"'size' must look like '1024x1024', got {size!r}", param="size"))
    return int(width), int(height)


def _b64(parsed: Mapping[str, Any]) -> bool:
    fmt = str(parsed.get("response_format", "url"))
    if fmt not in ("url", "b64_json"):
        raise WireError(hub_error(400, "'response_format' must be 'url' or 'b64_json'", param="response_format"))
    return fmt == "b64_json"


def _together_request(spec: ProviderSpec, operation: str, model: str, source: Source) -> WireRequest:
    parsed: Mapping[str, Any] = source.parsed
    doc = {k: v for k, v in parsed.items() if k not in _OPENAI_ONLY_IMAGE_FIELDS}
    doc["model"] = model
    size = _size(parsed)
    if size is not None:
        doc["width"], doc["height"] = size
    b64 = _b64(parsed)
    doc["response_format"] = "base64" if b64 else "url"
    return WireRequest(jsonx.dumps(doc), response_format="b64_json" if b64 else "url")


def _together_reply(request: WireRequest, body: bytes, content_type: str, now: int) -> WireReply:
    doc = _json_object(body)
    items = doc.get("data")
    if not isinstance(items, list):
        raise WireError(hub_error(502, "the provider's image reply has no 'data' list", type_="upstream_error"))
    data = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("b64_json"), str):
            data.append({"b64_json": item["b64_json"]})
        elif isinstance(item.get("url"), str):
            data.append({"url": item["url"]})
    return WireReply(jsonx.dumps({"created": now, "data": data}), JSON, None)


# -- Fireworks image workflows: aspect ratio instead of size, base64 images in a JSON reply -------------------

_ASPECT_RATIOS = ("1:1", "21:9", "16:9", "3:2", "5:4", "4:5", "2:3", "9:16", "9:21")


def _aspect_ratio(width: int, height: int) -> str:
    """The supported aspect ratio closest to ``width``:``height``."""
    wanted = Fraction(width, height)

    def distance(ratio: str) -> float:
        a, b = ratio.split(":")
        return abs(float(Fraction(int(a), int(b)) - wanted))

    return min(_ASPECT_RATIOS, key=distance)


def _fireworks_request(spec: ProviderSpec, operation: str, model: str, source: Source) -> WireRequest:
    parsed: Mapping[str, Any] = source.parsed
    prompt = parsed.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise WireError(hub_error(400, "'prompt' is required and must be a string", param="prompt"))
    n = parsed.get("n", 1)
    if n != 1:
        raise WireError(hub_error(400, f"provider {spec.id!r} generates one image per request ('n' must be 1)"))
    doc: dict[str, Any] = {"prompt": prompt}
    size = _size(parsed)
    if size is not None:
        doc["aspect_ratio"] = _aspect_ratio(*size)
    for name in ("seed", "guidance_scale", "num_inference_steps", "negative_prompt"):
        if name in parsed:
            doc[name] = parsed[name]
    b64 = _b64(parsed)
    return WireRequest(jsonx.dumps(doc), response_format="b64_json" if b64 else "url")


def _fireworks_reply(request: WireRequest, body: bytes, content_type: str, now: int) -> WireReply:
    doc = _json_object(body)
    finish = doc.get("finishReason", "SUCCESS")
    if finish != "SUCCESS":
        raise WireError(hub_error(400, f"the provider did not generate the image: {finish}", code="image_refused"))
    images = doc.get("base64")
    if not isinstance(images, list) or not images:
        raise WireError(hub_error(502, "the provider's image reply has no 'base64' images", type_="upstream_error"))
    data = []
    for image in images:
        media, b64 = _split_data_url(str(image))
        if request.response_format == "b64_json":
            data.append({"b64_json": b64})
        else:  # no hosted URL exists: a data URL is one every client can open
            data.append({"url": f"data:{media};base64,{b64}"})
    return WireReply(jsonx.dumps({"created": now, "data": data}), JSON, None)


def _split_data_url(value: str) -> tuple[str, str]:
    """``(media type, base64)`` of a data URL or of bare base64 (Fireworks' default output is JPEG)."""
    if value.startswith("data:") and ";base64," in value:
        head, b64 = value.split(";base64,", 1)
        return head[5:] or "image/jpeg", b64
    try:
        base64.b64decode(value[:64] + "=" * (-len(value[:64]) % 4), validate=True)
    except binascii.Error as exc:
        raise WireError(hub_error(502, "the provider's image is not base64", type_="upstream_error")) from exc
    return "image/jpeg", value


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise WireError(hub_error(502, "the provider's reply is not JSON", type_="upstream_error")) from exc
    if not isinstance(doc, dict):
        raise WireError(hub_error(502, "the provider's reply is not a JSON object", type_="upstream_error"))
    return doc


_OPENAI = HttpDialect(_openai_request, _openai_reply, passthrough=True)

# (operation, dialect) → how to speak it; the dialect is the catalog's (``dialects``) or the provider's format name
HTTP_DIALECTS: Mapping[tuple[str, str], HttpDialect] = {
    ("embeddings", "openai"): _OPENAI,
    ("images", "openai"): _OPENAI,
    ("images", "together-images"): HttpDialect(_together_request, _together_reply),
    ("images", "fireworks-workflow"): HttpDialect(_fireworks_request, _fireworks_reply),
}
