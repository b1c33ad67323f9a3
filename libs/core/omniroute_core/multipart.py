"""``multipart/form-data`` bodies (RFC 7578), read in place: the edge finds ``model`` and checks the audio file of
``/v1/audio/transcriptions``, the executor takes the file out for providers that want raw audio or rewrites the
``model`` field for those that take the form as it is. Parts are offsets into the one buffered body, so a 10 MB
upload is never copied to be parsed.

Also the audio formats the gateway accepts, recognised by their leading bytes (a file name or a declared content
type can say anything): mp3, wav, m4a, flac, ogg and webm, as the API reference lists them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "AUDIO_FORMATS",
    "Form",
    "MultipartError",
    "Part",
    "audio_format",
    "boundary_of",
    "parse_form",
    "replace_field",
]

_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')

# extension → media type, the formats providers accept and the API reference lists
AUDIO_FORMATS: Mapping[str, str] = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
}


class MultipartError(ValueError):
    """The body is not the multipart form its content type announces."""


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    start: int  # the content's byte range in the body
    end: int


@dataclass(frozen=True, slots=True)
class Form:
    body: bytes
    parts: tuple[Part, ...]

    def part(self, name: str) -> Part | None:
        """The first part named ``name``."""
        return next((p for p in self.parts if p.name == name), None)

    def value(self, name: str) -> str | None:
        """A text field's value (UTF-8), or None when the form has no such field."""
        part = self.part(name)
        if part is None or part.filename is not None:
            return None
        return self.body[part.start : part.end].decode("utf-8", "replace")

    def values(self, name: str) -> list[str]:
        """Every text value of a repeated field (``timestamp_granularities[]``), in order."""
        return [
            self.body[p.start : p.end].decode("utf-8", "replace")
            for p in self.parts
            if p.name == name and p.filename is None
        ]

    def content(self, part: Part) -> memoryview:
        return memoryview(self.body)[part.start : part.end]

    def fields(self) -> dict[str, str]:
        """Every text field (the first of a repeated name), for reading options."""
        out: dict[str, str] = {}
        for part in self.parts:
            if part.filename is None and part.name not in out:
                out[part.name] = self.body[part.start : part.end].decode("utf-8", "replace")
        return out


def _params(header_value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, raw in _PARAM.findall(";" + header_value.split(";", 1)[1] if ";" in header_value else ""):
        value = raw.strip()
        if value.startswith('"') and value.endswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out[key.lower()] = value
    return out


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` content type. Raises :class:`MultipartError`."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise MultipartError(f"expected a multipart/form-data body, got {media or 'no content type'!r}")
    boundary = _params(content_type).get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise MultipartError("the multipart/form-data content type has no valid boundary")
    return boundary.encode("latin-1")


def parse_form(body: bytes, content_type: str) -> Form:
    """The parts of ``body``. Raises :class:`MultipartError` when it is not a complete multipart form."""
    delimiter = b"--" + boundary_of(content_type)
    pos = body.find(delimiter)
    if pos < 0:
        raise MultipartError("the multipart body does not contain its boundary")
    pos += len(delimiter)
    parts: list[Part] = []
    while True:
        if body[pos : pos + 2] == b"--":
            return Form(body, tuple(parts))
        line_end = body.find(b"\r\n", pos)
        head_end = body.find(b"\r\n\r\n", line_end)
        if line_end < 0 or head_end < 0:
            raise MultipartError("a part of the multipart body has no header block")
        headers = _headers(body[line_end + 2 : head_end])
        start = head_end + 4
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise MultipartError("the multipart body ends before its closing boundary")
        disposition = headers.get("content-disposition", "")
        if disposition.split(";", 1)[0].strip().lower() != "form-data":
            raise MultipartError("a part of the form has no 'Content-Disposition: form-data' header")
        params = _params(disposition)
        if "name" not in params:
            raise MultipartError("a part of the form has no name")
        parts.append(Part(params["name"], params.get("filename"), headers.get("content-type", ""), start, end))
        pos = end + 2 + len(delimiter)


def _headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            raise MultipartError("a part header of the multipart body is malformed")
        out[name.strip().decode("latin-1").lower()] = value.strip().decode("utf-8", "replace")
    return out


def replace_field(form: Form, name: str, value: str) -> bytes:
    """The body with text field ``name``'s content replaced by ``value`` (every other byte unchanged)."""
    part = form.part(name)
    if part is None:
        raise MultipartError(f"the form has no {name!r} field")
    return form.body[: part.start] + value.encode() + form.body[part.end :]


def audio_format(data: bytes | memoryview) -> str | None:
    """The extension (a key of :data:`AUDIO_FORMATS`) of audio ``data`` from its leading bytes, or None."""
    head = bytes(data[:64])
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        return "mp3"  # an ID3 tag, or an MPEG audio frame sync (with a layer set; 0xFFF1/0xFFF9 is ADTS AAC)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # EBML (Matroska/WebM)
    if head[4:8] == b"ftyp":
        return "m4a"  # ISO base media (M4A/MP4 audio)
    return None
