"""Fake upstreams for embeddings, image generation and transcription, speaking each provider's real wire format.

- OpenAI's ``/v1/embeddings``, ``/v1/images/generations`` and ``/v1/audio/transcriptions`` (:func:`openai_media`,
  which :class:`~omniroute_devservers.fake_openai.FakeOpenAI` answers for those paths; Mistral, Nebius, NVIDIA
  and xAI speak the same shape);
- :class:`FakeTogether` (images with ``width``/``height`` and ``response_format: base64|url``),
  :class:`FakeFireworks` (image workflows with ``aspect_ratio``, base64 data URLs),
  :class:`FakeDeepgram` (``POST /v1/listen?model=`` with raw audio and ``Authorization: Token``),
  :class:`FakeAssemblyAI` (upload → transcript job → polls that complete after :attr:`FakeAssemblyAI.polls`).

Each refuses what its provider would refuse (a wrong auth scheme, a body that is not audio, a missing field) with
the provider's status, so a gateway bug shows up as a failed request; tests assert the exact request in
``requests`` and script failures through ``script``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

from omniroute_core.multipart import MultipartError, audio_format, parse_form
from omniroute_devservers.fake_upstream import FakeUpstream, Recorded, Reply

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "PNG_B64",
    "TRANSCRIPT",
    "WORD_TIMES",
    "FakeAssemblyAI",
    "FakeDeepgram",
    "FakeFireworks",
    "FakeTogether",
    "fake_vector",
    "openai_media",
]

TRANSCRIPT = "Hello, this is the transcribed audio content."
AUDIO_SECONDS = 12.5
# the transcript's words with their times in seconds: one sentence, a pause, then it goes on
WORD_TIMES = (
    ("Hello,", 0.08, 0.4),
    ("this", 0.48, 0.64),
    ("is", 0.64, 0.76),
    ("the", 0.76, 0.88),
    ("transcribed", 0.88, 1.44),
    ("audio", 1.44, 1.8),
    ("content.", 1.8, 2.3),
)
EMBEDDING_DIMENSIONS = 8
# a 1x1 transparent PNG
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
IMAGE_URL = "https://images.fake.test/generated.png"
CREATED = 1_700_000_000


def fake_vector(text: str, dims: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic unit vector of ``text`` (so tests can compare what they got with what was embedded)."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(b - 127.5) / 127.5 for b in digest[:dims]]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


def _error(status: int, message: str, type_: str = "invalid_request_error") -> Reply:
    return Reply(status=status, json={"error": {"message": message, "type": type_, "param": None, "code": None}})


def _bearer(request: Recorded, scheme: str = "Bearer") -> bool:
    return request.headers.get("Authorization", "").startswith(scheme + " ")


# -- OpenAI ---------------------------------------------------------------------------------------------------


def _embeddings(request: Recorded) -> Reply:
    doc = request.json
    inputs = doc.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not isinstance(doc.get("model"), str):
        return _error(400, "'input' and 'model' are required")
    b64 = doc.get("encoding_format") == "base64"
    data = []
    for i, text in enumerate(inputs):
        vector = fake_vector(str(text))
        packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": packed if b64 else vector})
    tokens = sum(len(str(t).split()) for t in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return Reply(json={"object": "list", "data": data, "model": doc["model"], "usage": usage})


def _images(request: Recorded) -> Reply:
    doc = request.json
    if not isinstance(doc.get("prompt"), str) or not doc["prompt"]:
        return _error(400, "'prompt' is required")
    n = int(doc.get("n", 1))
    b64 = doc.get("response_format") == "b64_json"
    item = {"b64_json": PNG_B64} if b64 else {"url": IMAGE_URL, "revised_prompt": doc["prompt"]}
    out: dict[str, Any] = {"created": CREATED, "data": [item] * n}
    if doc.get("model") == "gpt-image-1":  # token-billed image models report usage
        out["usage"] = {"input_tokens": 9, "output_tokens": 272, "total_tokens": 281}
    return Reply(json=out)


def _transcription(request: Recorded) -> Reply:
    try:
        form = parse_form(request.body, request.headers.get("Content-Type", ""))
    except MultipartError as exc:
        return _error(400, f"invalid multipart body: {exc}")
    part = form.part("file")
    model = form.value("model")
    if part is None or part.filename is None or not model:
        return _error(400, "'file' and 'model' are required")
    if audio_format(form.content(part)) is None:
        return _error(400, "Invalid file format.")
    fmt = form.value("response_format") or "json"
    if fmt == "text":
        return Reply(raw=TRANSCRIPT.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})
    if fmt == "verbose_json":
        body = {"task": "transcribe", "language": "english", "duration": AUDIO_SECONDS, "text": TRANSCRIPT}
        return Reply(json={**body, "segments": []})
    out: dict[str, Any] = {"text": TRANSCRIPT}
    if model != "whisper-1":  # the gpt-4o transcribe models report token usage
        out["usage"] = {"type": "tokens", "input_tokens": 20, "output_tokens": 11, "total_tokens": 31}
    return Reply(json=out)


_OPENAI_MEDIA = {
    "/v1/embeddings": _embeddings,
    "/v1/images/generations": _images,
    "/v1/audio/transcriptions": _transcription,
}


def openai_media(request: Recorded) -> Reply | None:
    """OpenAI's answer to a media request, or None when ``request`` is not one (chat)."""
    handler = _OPENAI_MEDIA.get(request.path.split("?", 1)[0])
    if handler is None:
        return None
    if not _bearer(request):
        return _error(401, "Incorrect API key provided", "invalid_request_error")
    return handler(request)


# -- Together: OpenAI's path, its own image fields --------------------------------------------------------------


class FakeTogether(FakeUpstream):
    prefix = "/v1"

    def default(self, request: Recorded) -> Reply:
        if not _bearer(request):
            return _error(401, "Invalid API key")
        if request.path == "/v1/embeddings":
            return _embeddings(request)
        if request.path != "/v1/images/generations":
            return _error(404, f"no route {request.path}")
        doc = request.json
        if "size" in doc or doc.get("response_format") not in (None, "url", "base64"):
            return _error(400, "size is not a parameter; response_format must be base64 or url")
        if not isinstance(doc.get("width", 1024), int) or not isinstance(doc.get("height", 1024), int):
            return _error(400, "width and height must be integers")
        item = (
            {"index": 0, "b64_json": PNG_B64}
            if doc.get("response_format") == "base64"
            else {"index": 0, "url": IMAGE_URL}
        )
        return Reply(json={"id": "img-fake", "model": doc.get("model"), "object": "list", "data": [item]})


# -- Fireworks: image workflows ---------------------------------------------------------------------------------


class FakeFireworks(FakeUpstream):
    prefix = "/inference/v1"

    def default(self, request: Recorded) -> Reply:
        if not _bearer(request):
            return _error(401, "unauthorized")
        path = request.path
        if path == "/inference/v1/embeddings":
            return _embeddings(request)
        if not (path.startswith("/inference/v1/workflows/") and path.endswith("/text_to_image")):
            return _error(404, f"no route {path}")
        if request.headers.get("Accept") != "application/json":
            return Reply(raw=base64.b64decode(PNG_B64), headers={"Content-Type": "image/jpeg"})
        doc = request.json
        if "model" in doc or "size" in doc or not isinstance(doc.get("prompt"), str):
            return _error(400, "unexpected fields: the workflow takes prompt, aspect_ratio, seed, ...")
        ratio = doc.get("aspect_ratio", "1:1")
        reply = {"id": "fw-fake", "base64": [f"data:image/png;base64,{PNG_B64}"], "finishReason": "SUCCESS"}
        return Reply(json={**reply, "seed": 1234, "aspect_ratio_seen": ratio})


# -- Deepgram: raw audio, Token auth ----------------------------------------------------------------------------


class FakeDeepgram(FakeUpstream):
    prefix = "/v1"

    def default(self, request: Recorded) -> Reply:
        if not _bearer(request, "Token"):
            return Reply(status=401, json={"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."})
        if request.method == "GET" and request.path == "/v1/projects":
            return Reply(json={"projects": [{"project_id": "p-fake", "name": "Fake project"}]})
        if not request.path.startswith("/v1/listen?"):
            return Reply(status=404, json={"err_code": "NOT_FOUND", "err_msg": request.path})
        media = request.headers.get("Content-Type", "")
        if not media.startswith("audio/") or audio_format(request.body) is None:
            return Reply(status=400, json={"err_code": "Bad Request", "err_msg": "corrupt or unsupported data"})
        query = dict(p.split("=", 1) for p in request.path.split("?", 1)[1].split("&"))
        language = query.get("language") or "en"
        # Deepgram's words: lower-case `word`, `punctuated_word` with smart_format, times in seconds
        words = [
            {"word": w.strip(",.").lower(), "start": a, "end": b, "confidence": 0.99, "punctuated_word": w}
            for w, a, b in WORD_TIMES
        ]
        channel: dict[str, Any] = {"alternatives": [{"transcript": TRANSCRIPT, "confidence": 0.99, "words": words}]}
        if query.get("detect_language") == "true":
            channel["detected_language"] = language
        metadata = {"request_id": "dg-fake", "duration": AUDIO_SECONDS, "channels": 1, "models": ["fake"]}
        return Reply(json={"metadata": metadata, "results": {"channels": [channel]}})


# -- AssemblyAI: upload, create, poll ---------------------------------------------------------------------------


class FakeAssemblyAI(FakeUpstream):
    """Jobs complete on their :attr:`polls`-th poll (earlier polls answer ``processing``)."""

    prefix = "/v2"

    def __init__(self, polls: int = 2) -> None:
        super().__init__()
        self.polls = polls
        self.uploads: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}

    def default(self, request: Recorded) -> Reply:
        key = request.headers.get("Authorization", "")
        if not key or " " in key:  # the key alone, no scheme
            return Reply(status=401, json={"error": "Authentication error, API token missing/invalid"})
        if request.method == "POST" and request.path == "/v2/upload":
            if audio_format(request.body) is None:
                return Reply(status=400, json={"error": "upload is not audio"})
            name = f"u{len(self.uploads) + 1}"
            self.uploads[name] = request.body
            return Reply(json={"upload_url": f"https://cdn.fake.test/upload/{name}"})
        if request.method == "POST" and request.path == "/v2/transcript":
            doc = request.json
            url = str(doc.get("audio_url", ""))
            if url.rsplit("/", 1)[-1] not in self.uploads:
                return Reply(status=400, json={"error": "Download error: unknown audio_url"})
            job = f"t{len(self.jobs) + 1}"
            self.jobs[job] = {"request": doc, "polls": 0}
            return Reply(json={"id": job, "status": "queued", "audio_url": url})
        if request.method == "GET" and request.path.startswith("/v2/transcript/"):
            job_id = request.path.rsplit("/", 1)[-1]
            state = self.jobs.get(job_id)
            if state is None:
                return Reply(status=404, json={"error": "Transcript ID not found"})
            state["polls"] += 1
            if state["polls"] < self.polls:
                return Reply(json={"id": job_id, "status": "processing", "text": None})
            language = state["request"].get("language_code") or "en_us"
            done = {"id": job_id, "status": "completed", "text": TRANSCRIPT, "language_code": language}
            # AssemblyAI times words in milliseconds
            done["words"] = [
                {"text": w, "start": round(a * 1000), "end": round(b * 1000), "confidence": 0.98, "speaker": None}
                for w, a, b in WORD_TIMES
            ]
            return Reply(json={**done, "audio_duration": AUDIO_SECONDS, "confidence": 0.98})
        return Reply(status=404, json={"error": f"no route {request.method} {request.path}"})
