"""Transcription dialects, pure: OpenAI's multipart form (passed through with ``model`` rewritten), Deepgram's raw
audio body, and the pieces of AssemblyAI's upload → create → poll flow (the I/O that drives it is in
:mod:`omniroute_executor.modalities._run`). Replies come back in OpenAI's transcription shape, the one the API
reference documents: ``{"text", "task": "transcribe", "language", "duration"}``, or the bare text for
``response_format=text``, ``srt`` or ``vtt`` (captions timed from the provider's word timings, see
:mod:`._captions`); ``verbose_json`` adds ``segments`` and, with ``timestamp_granularities[]=word``, ``words``.
See :mod:`._wire` for why these mappings live in the executor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from omniroute_core import jsonx
from omniroute_core.catalog import ProviderSpec
from omniroute_core.errors import hub_error
from omniroute_core.multipart import AUDIO_FORMATS, Form, audio_format, replace_field
from omniroute_executor.modalities._captions import Word, segments, segments_json, srt, vtt
from omniroute_executor.modalities._wire import (
    JSON,
    HttpDialect,
    Source,
    WireError,
    WireReply,
    WireRequest,
    usage_of,
)

__all__ = [
    "ASSEMBLYAI_LEGACY_MODELS",
    "DEEPGRAM",
    "OPENAI_TRANSCRIPTION",
    "AssemblyJob",
    "assemblyai_create",
    "assemblyai_job_id",
    "assemblyai_reply",
    "assemblyai_upload",
    "audio_of",
    "transcript",
]

TEXT = "text/plain; charset=utf-8"
# response formats a converted reply can take (OpenAI's list)
_CONVERTED_FORMATS = ("json", "verbose_json", "text", "srt", "vtt")
# AssemblyAI's legacy model classes are named in the singular `speech_model`; current models in `speech_models`
ASSEMBLYAI_LEGACY_MODELS = frozenset({"best", "nano"})


def audio_of(form: Form) -> tuple[memoryview, str]:
    """The uploaded file's bytes and media type. Raises :class:`WireError` (400) when there is none."""
    part = form.part("file")
    if part is None or part.filename is None:
        raise WireError(hub_error(400, "the form has no 'file' part", param="file"))
    data = form.content(part)
    fmt = audio_format(data)
    if fmt is None:
        supported = ", ".join(AUDIO_FORMATS)
        raise WireError(hub_error(400, f"unsupported audio format; supported: {supported}", param="file"))
    return data, AUDIO_FORMATS[fmt]


def _language(code: str) -> str:
    """ISO 639-1 from a provider's code (``en_us`` → ``en``)."""
    return code.replace("-", "_").split("_", 1)[0].lower()


def _response_format(form: Form, provider: str) -> str:
    fmt = (form.value("response_format") or "json").strip()
    if fmt not in _CONVERTED_FORMATS:
        accepted = ", ".join(_CONVERTED_FORMATS)
        raise WireError(
            hub_error(
                400,
                f"provider {provider!r} cannot return response_format {fmt!r} (accepted: {accepted})",
                param="response_format",
            )
        )
    if fmt == "verbose_json" and "word" in form.values("timestamp_granularities[]"):
        return "verbose_json+words"
    return fmt


def transcript(
    text: str, language: str, duration: float, response_format: str, words: Sequence[Word] = ()
) -> WireReply:
    """The reply in the client's ``response_format`` (``verbose_json+words``: verbose with the words too)."""
    if response_format == "text":
        return WireReply(text.encode(), TEXT, None)
    if response_format in ("srt", "vtt"):
        parts = segments(words, text=text, duration=duration)
        return WireReply((srt(parts) if response_format == "srt" else vtt(parts)).encode(), TEXT, None)
    doc: dict[str, Any] = {"text": text, "task": "transcribe", "language": language, "duration": duration}
    if response_format.startswith("verbose_json"):
        doc["segments"] = segments_json(segments(words, text=text, duration=duration))
        if response_format == "verbose_json+words":
            doc["words"] = [{"word": w.text, "start": w.start, "end": w.end} for w in words]
    return WireReply(jsonx.dumps(doc), JSON, None)


# -- OpenAI: the form as the client sent it, with `model` rewritten ---------------------------------------------


def _openai_request(spec: ProviderSpec, operation: str, model: str, source: Source) -> WireRequest:
    form: Form = source.parsed
    return WireRequest(replace_field(form, "model", model), content_type=source.content_type, accept="*/*")


def _openai_reply(request: WireRequest, body: bytes, content_type: str, now: int) -> WireReply:
    usage = None
    if content_type.startswith(JSON):
        try:
            usage = usage_of(jsonx.loads(body))
        except jsonx.JSONDecodeError:
            usage = None
    return WireReply(body, content_type or JSON, usage)


OPENAI_TRANSCRIPTION = HttpDialect(_openai_request, _openai_reply, passthrough=True)


# -- Deepgram: POST /listen?model=... with the raw audio as the body ------------------------------------------


def _deepgram_request(spec: ProviderSpec, operation: str, model: str, source: Source) -> WireRequest:
    form: Form = source.parsed
    data, media = audio_of(form)
    fmt = _response_format(form, spec.id)
    query = {"smart_format": "true"}  # punctuation and casing, as OpenAI's models write them
    language = (form.value("language") or "").strip()
    query["language" if language else "detect_language"] = language or "true"
    return WireRequest(data, content_type=media, query=query, response_format=fmt)


def _deepgram_reply(request: WireRequest, body: bytes, content_type: str, now: int) -> WireReply:
    doc = _object(body)
    results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
    channels = results.get("channels") if isinstance(results, dict) else None
    channel: Mapping[str, Any] = channels[0] if isinstance(channels, list) and channels else {}
    alternatives = channel.get("alternatives")
    best: Mapping[str, Any] = alternatives[0] if isinstance(alternatives, list) and alternatives else {}
    text = best.get("transcript")
    if not isinstance(text, str):
        raise WireError(hub_error(502, "the provider's reply has no transcript", type_="upstream_error"))
    language = request.query.get("language") or str(channel.get("detected_language") or "en")
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    duration = metadata.get("duration", 0.0) if isinstance(metadata, dict) else 0.0
    words = _timed(best.get("words"), ("punctuated_word", "word"), scale=1.0)
    return transcript(text, _language(language), float(duration or 0.0), request.response_format, words)


def _timed(raw: Any, names: tuple[str, ...], *, scale: float) -> list[Word]:
    """Word timings from a provider's list of ``{<text>, "start", "end"}`` (``scale``: to seconds); entries
    without a usable text or time are skipped."""
    out: list[Word] = []
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict):
            continue
        text = next((item[n] for n in names if isinstance(item.get(n), str) and item[n]), None)
        start, end = item.get("start"), item.get("end")
        if text is None or not _number(start) or not _number(end):
            continue
        out.append(Word(text, round(float(start) * scale, 3), round(float(end) * scale, 3)))
    return out


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


DEEPGRAM = HttpDialect(_deepgram_request, _deepgram_reply)


# -- AssemblyAI: upload, create a transcript job, poll it -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssemblyJob:
    """One polled state of a transcript job."""

    status: str  # queued | processing | completed | error
    reply: WireReply | None = None  # set when completed
    error: str = ""  # set when the job failed


def assemblyai_upload(source: Source) -> tuple[WireRequest, str]:
    """The upload request (raw bytes) and the client's response format. Raises :class:`WireError`."""
    form: Form = source.parsed
    data, _ = audio_of(form)
    fmt = _response_format(form, "assemblyai")
    return WireRequest(data, content_type="application/octet-stream", response_format=fmt), fmt


def assemblyai_create(upload_reply: bytes, model: str, form: Form) -> bytes:
    """The transcript job request for an upload reply ``{"upload_url"}``. Raises :class:`WireError`."""
    url = _object(upload_reply).get("upload_url")
    if not isinstance(url, str) or not url:
        raise WireError(hub_error(502, "the provider's upload reply has no 'upload_url'", type_="upstream_error"))
    doc: dict[str, Any] = {"audio_url": url}
    if model in ASSEMBLYAI_LEGACY_MODELS:
        doc["speech_model"] = model
    else:
        doc["speech_models"] = [model]
    language = (form.value("language") or "").strip()
    if language:
        doc["language_code"] = language
    else:
        doc["language_detection"] = True  # OpenAI's models detect the language unless told
    return jsonx.dumps(doc)


def assemblyai_job_id(create_reply: bytes) -> str:
    job = _object(create_reply).get("id")
    if not isinstance(job, str) or not job:
        raise WireError(hub_error(502, "the provider's transcript reply has no 'id'", type_="upstream_error"))
    return job


def assemblyai_reply(poll_reply: bytes, response_format: str) -> AssemblyJob:
    """The state of a polled job; when completed, the client's reply."""
    doc = _object(poll_reply)
    status = str(doc.get("status", ""))
    if status == "error":
        return AssemblyJob(status, error=str(doc.get("error") or "transcription failed"))
    if status != "completed":
        return AssemblyJob(status or "queued")
    text = doc.get("text") or ""
    language = _language(str(doc.get("language_code") or "en"))
    duration = doc.get("audio_duration")
    seconds = float(duration) if _number(duration) else 0.0
    words = _timed(doc.get("words"), ("text",), scale=0.001)  # AssemblyAI times words in milliseconds
    return AssemblyJob(status, reply=transcript(str(text), language, seconds, response_format, words))


def _object(body: bytes) -> dict[str, Any]:
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise WireError(hub_error(502, "the provider's reply is not JSON", type_="upstream_error")) from exc
    if not isinstance(doc, dict):
        raise WireError(hub_error(502, "the provider's reply is not a JSON object", type_="upstream_error"))
    return doc
