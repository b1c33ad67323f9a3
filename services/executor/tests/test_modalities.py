"""Embeddings, images and transcription through the engine's attempt loop, against fakes of each provider's wire:
the exact upstream request, the reply in OpenAI's shape, usage, fallback in a combo, failures in OpenAI's envelope."""

from __future__ import annotations

import base64
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from omniroute.v1 import common_pb2, executor_pb2, usage_pb2
from omniroute_core import grpcx, jsonx
from omniroute_core.catalog import load_catalog
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.snapshot import Combo, ComboStep, ConfigSnapshot, ProviderConnection
from omniroute_devservers.fake_media import (
    AUDIO_SECONDS,
    PNG_B64,
    TRANSCRIPT,
    FakeAssemblyAI,
    FakeDeepgram,
    FakeFireworks,
    FakeTogether,
    fake_vector,
)
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.fake_upstream import FakeUpstream
from omniroute_executor.engine import Engine
from omniroute_executor.local import LocalEmbedder
from omniroute_executor.modalities import ModalityRunner
from omniroute_executor.prepare import Credentials
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import Upstream

KEY = "sk-media-key"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64
BOUNDARY = "----omniroute-test-boundary"


@dataclass
class Events:
    seen: list[usage_pb2.UsageEvent] = field(default_factory=list)

    def emit(self, event: usage_pb2.UsageEvent) -> None:
        self.seen.append(event)


@dataclass
class Rig:
    engine: Engine
    openai: FakeOpenAI
    broken: FakeOpenAI
    together: FakeTogether
    fireworks: FakeFireworks
    deepgram: FakeDeepgram
    assemblyai: FakeAssemblyAI
    events: Events


@pytest.fixture(scope="module")
async def local() -> AsyncIterator[LocalEmbedder]:
    embedder = LocalEmbedder(concurrency=1)
    yield embedder
    embedder.close()


@pytest.fixture
async def rig(local: LocalEmbedder) -> AsyncIterator[Rig]:
    fakes: list[FakeUpstream] = [
        FakeOpenAI(),
        FakeOpenAI(),
        FakeTogether(),
        FakeFireworks(),
        FakeDeepgram(),
        FakeAssemblyAI(polls=3),
    ]
    for fake in fakes:
        await fake.start()
    openai, broken, together, fireworks, deepgram, assemblyai = fakes
    cipher = Cipher(generate_encryption_key())

    def conn(cid: str, provider: str, base_url: str, priority: int = 0) -> ProviderConnection:
        return ProviderConnection(cid, provider, cid, base_url, cipher.encrypt(KEY, aad=cid), priority=priority)

    conns = (
        conn("c-openai", "openai", openai.base_url),
        conn("c-nvidia", "nvidia", openai.base_url),
        conn("c-mistral", "mistral", broken.base_url),
        conn("c-xai", "xai", openai.base_url),
        conn("c-together", "together", together.base_url),
        conn("c-fireworks", "fireworks", fireworks.base_url),
        conn("c-deepgram", "deepgram", deepgram.base_url),
        conn("c-assemblyai", "assemblyai", assemblyai.base_url),
        conn("c-anthropic", "anthropic", openai.base_url),
    )
    combos = (
        Combo(
            "k1",
            "embed-chain",
            "priority",
            (ComboStep("mistral/mistral-embed"), ComboStep("openai/text-embedding-3-small")),
        ),
        Combo(
            "k2", "local-chain", "priority", (ComboStep("mistral/mistral-embed"), ComboStep("local/all-minilm-l6-v2"))
        ),
    )
    snap = ConfigSnapshot.build(1, conns, (), {}, combos)
    upstream = Upstream(max_connections=10, connect_timeout_s=2, read_timeout_s=2)
    channel = grpcx.insecure_channel("127.0.0.1:9")  # OpenAI-format clients never need the translator
    credentials = Credentials(cipher)

    async def no_sleep(_: float) -> None:
        return None

    events = Events()
    engine = Engine(
        catalog=load_catalog(),
        snapshot=lambda: snap,
        credentials=credentials,
        upstream=upstream,
        translator=TranslatorClient(channel),
        publisher=events,
        modalities=ModalityRunner(
            upstream, credentials, local, poll_interval_s=0.0, now=lambda: 1_800_000_000, sleep=no_sleep
        ),
    )
    try:
        yield Rig(engine, openai, broken, together, fireworks, deepgram, assemblyai, events)  # type: ignore[arg-type]
    finally:
        await upstream.close()
        await channel.close()
        for fake in fakes:
            await fake.stop()


def call(
    operation: common_pb2.Operation.ValueType, model: str, body: bytes, content_type: str = ""
) -> executor_pb2.ExecuteRequest:
    meta = common_pb2.RequestMeta(
        request_id=uuid.uuid4().hex,
        client_format=common_pb2.FORMAT_OPENAI_CHAT,
        operation=operation,
        model=model,
        content_type=content_type,
    )
    return executor_pb2.ExecuteRequest(meta=meta, body=body)


def embed(model: str, body: bytes | None = None) -> executor_pb2.ExecuteRequest:
    body = body or jsonx.dumps({"model": model, "input": ["hello world", "bye"]})
    return call(common_pb2.OPERATION_EMBEDDINGS, model, body)


def form(fields: dict[str, str], audio: bytes = WAV, filename: str = "clip.wav") -> tuple[bytes, str]:
    out = b""
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + audio
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    return out, f"multipart/form-data; boundary={BOUNDARY}"


def transcribe(model: str, **fields: str) -> executor_pb2.ExecuteRequest:
    body, ctype = form({"model": model, **fields})
    return call(common_pb2.OPERATION_TRANSCRIPTION, model, body, ctype)


# -- embeddings -----------------------------------------------------------------------------------------------


async def test_openai_embeddings_pass_through_with_only_the_model_rewritten(rig: Rig) -> None:
    body = b'{"input": ["hello world", "bye"], "model": "openai/text-embedding-3-small", "encoding_format": "float"}'
    reply = await rig.engine.execute(embed("openai/text-embedding-3-small", body))
    assert reply.status == 200, reply.body
    sent = rig.openai.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/embeddings")
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body == body.replace(b'"openai/text-embedding-3-small"', b'"text-embedding-3-small"')
    doc = jsonx.loads(reply.body)
    assert [d["embedding"] for d in doc["data"]] == [fake_vector("hello world"), fake_vector("bye")]
    assert (reply.usage.input_tokens, reply.usage.total_tokens) == (3, 3)
    assert (reply.provider, reply.model) == ("openai", "text-embedding-3-small")
    [event] = rig.events.seen
    assert (event.provider, event.status, event.usage.input_tokens, event.attempt) == ("openai", 200, 3, 1)


async def test_nvidia_gets_its_required_input_type_by_default(rig: Rig) -> None:
    reply = await rig.engine.execute(embed("nvidia/nvidia/nv-embedqa-e5-v5"))
    assert reply.status == 200
    sent = rig.openai.requests[-1].json
    assert sent == {"input_type": "query", "model": "nvidia/nv-embedqa-e5-v5", "input": ["hello world", "bye"]}
    body = jsonx.dumps({"model": "nim/nvidia/nv-embedqa-e5-v5", "input": "q", "input_type": "passage"})
    await rig.engine.execute(embed("nim/nvidia/nv-embedqa-e5-v5", body))
    assert rig.openai.requests[-1].json["input_type"] == "passage"


async def test_provider_5xx_falls_back_to_the_next_step_of_a_combo(rig: Rig) -> None:
    rig.broken.script.append(Reply(status=503, raw=b"overloaded"))
    reply = await rig.engine.execute(embed("embed-chain"))
    assert reply.status == 200
    assert rig.broken.requests[-1].json["model"] == "mistral-embed"
    assert reply.provider == "openai"
    assert [(e.provider, e.status, e.attempt, e.combo) for e in rig.events.seen] == [
        ("mistral", 503, 1, "embed-chain"),
        ("openai", 200, 2, "embed-chain"),
    ]


async def test_a_provider_json_error_is_relayed_and_an_unknown_model_is_404(rig: Rig) -> None:
    err = {"error": {"message": "model not found", "type": "invalid_request_error", "param": None, "code": None}}
    rig.openai.script.append(Reply(status=404, json=err))
    reply = await rig.engine.execute(embed("openai/text-embedding-9"))
    assert (reply.status, jsonx.loads(reply.body)) == (404, err)
    reply = await rig.engine.execute(embed("nope/embedder"))
    assert reply.status == 404
    assert jsonx.loads(reply.body)["error"]["code"] == "model_not_found"


async def test_a_provider_without_the_capability_is_400(rig: Rig) -> None:
    reply = await rig.engine.execute(embed("anthropic/claude-sonnet-4-5"))
    assert reply.status == 400
    assert jsonx.loads(reply.body)["error"]["message"] == "provider 'anthropic' does not support embeddings"
    reply = await rig.engine.execute(call(common_pb2.OPERATION_IMAGES, "deepgram/nova-3", b'{"prompt": "x"}'))
    assert reply.status == 400
    assert "does not support images" in jsonx.loads(reply.body)["error"]["message"]


async def test_a_body_that_is_not_json_is_400(rig: Rig) -> None:
    reply = await rig.engine.execute(embed("openai/text-embedding-3-small", b"{nope"))
    assert reply.status == 400
    assert "not valid JSON" in jsonx.loads(reply.body)["error"]["message"]


# -- the local model --------------------------------------------------------------------------------------------


async def test_local_embeddings_without_any_connection(rig: Rig) -> None:
    body = jsonx.dumps(
        {"model": "local/all-minilm-l6-v2", "input": ["The food was delicious", "The meal tasted wonderful"]}
    )
    reply = await rig.engine.execute(embed("local/all-minilm-l6-v2", body))
    assert reply.status == 200, reply.body
    doc = jsonx.loads(reply.body)
    assert doc["object"] == "list" and doc["model"] == "all-minilm-l6-v2"
    a, b = (d["embedding"] for d in doc["data"])
    assert len(a) == 384
    assert abs(sum(x * x for x in a) - 1) < 1e-5
    assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.7  # paraphrases
    assert doc["usage"] == {"prompt_tokens": reply.usage.input_tokens, "total_tokens": reply.usage.input_tokens}
    assert reply.usage.input_tokens == 12  # [CLS] the food was delicious [SEP], [CLS] the meal tasted wonderful [SEP]
    assert rig.events.seen[-1].connection_id == "builtin:local"


async def test_local_embeddings_in_base64_are_little_endian_float32(rig: Rig) -> None:
    text = "How do I reset my password?"
    floats = jsonx.loads(
        (await rig.engine.execute(embed("local/all-minilm-l6-v2", jsonx.dumps({"model": "m", "input": text})))).body
    )
    packed = jsonx.loads(
        (
            await rig.engine.execute(
                embed("local/all-minilm-l6-v2", jsonx.dumps({"model": "m", "input": text, "encoding_format": "base64"}))
            )
        ).body
    )
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert list(struct.unpack("<384f", raw)) == pytest.approx(floats["data"][0]["embedding"], abs=1e-7)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"input": []}, "'input' must be a string or a non-empty array"),
        ({"input": [[1, 2, 3]]}, "'input' must be a string or a non-empty array"),
        ({"input": ""}, "must not be empty"),
        ({"input": "x", "dimensions": 256}, "384 dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "'encoding_format'"),
    ],
)
async def test_local_embeddings_refuse_bad_requests_with_400(rig: Rig, doc: dict[str, object], message: str) -> None:
    reply = await rig.engine.execute(
        embed("local/all-minilm-l6-v2", jsonx.dumps({"model": "local/all-minilm-l6-v2", **doc}))
    )
    assert reply.status == 400
    assert message in jsonx.loads(reply.body)["error"]["message"]


async def test_local_model_serves_a_combo_when_the_remote_provider_fails(rig: Rig) -> None:
    rig.broken.script.append(Reply(status=500, raw=b"boom"))
    reply = await rig.engine.execute(embed("local-chain"))
    assert (reply.status, reply.provider) == (200, "local")


# -- images -----------------------------------------------------------------------------------------------------


def images(model: str, **extra: object) -> executor_pb2.ExecuteRequest:
    return call(common_pb2.OPERATION_IMAGES, model, jsonx.dumps({"model": model, "prompt": "A sunset", **extra}))


async def test_openai_images_pass_through_and_report_token_usage(rig: Rig) -> None:
    reply = await rig.engine.execute(images("openai/gpt-image-1", size="1024x1024"))
    assert reply.status == 200
    assert rig.openai.requests[-1].json == {"model": "gpt-image-1", "prompt": "A sunset", "size": "1024x1024"}
    assert rig.openai.requests[-1].path == "/v1/images/generations"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (9, 272)


async def test_xai_images_drop_the_fields_xai_refuses(rig: Rig) -> None:
    reply = await rig.engine.execute(images("xai/grok-2-image", size="1024x1024", quality="hd", n=2))
    assert reply.status == 200
    assert rig.openai.requests[-1].json == {"model": "grok-2-image", "prompt": "A sunset", "n": 2}
    assert len(jsonx.loads(reply.body)["data"]) == 2


async def test_together_images_speak_width_height_and_base64(rig: Rig) -> None:
    model = "together/black-forest-labs/FLUX.1-schnell"
    reply = await rig.engine.execute(images(model, size="1024x768", response_format="b64_json", steps=4))
    assert reply.status == 200, reply.body
    assert rig.together.requests[-1].json == {
        "model": "black-forest-labs/FLUX.1-schnell",
        "prompt": "A sunset",
        "steps": 4,
        "width": 1024,
        "height": 768,
        "response_format": "base64",
    }
    assert jsonx.loads(reply.body) == {"created": 1_800_000_000, "data": [{"b64_json": PNG_B64}]}


async def test_fireworks_workflow_images_come_back_in_openai_shape(rig: Rig) -> None:
    model = "fireworks/accounts/fireworks/models/flux-1-schnell-fp8"
    reply = await rig.engine.execute(images(model, size="1792x1024"))
    assert reply.status == 200, reply.body
    sent = rig.fireworks.requests[-1]
    assert sent.path == "/inference/v1/workflows/accounts/fireworks/models/flux-1-schnell-fp8/text_to_image"
    assert sent.headers["Accept"] == "application/json"
    assert sent.json == {"prompt": "A sunset", "aspect_ratio": "16:9"}
    assert jsonx.loads(reply.body) == {"created": 1_800_000_000, "data": [{"url": f"data:image/png;base64,{PNG_B64}"}]}
    reply = await rig.engine.execute(images(model, n=2))
    assert reply.status == 400
    assert "'n' must be 1" in jsonx.loads(reply.body)["error"]["message"]


async def test_a_malformed_size_is_400(rig: Rig) -> None:
    reply = await rig.engine.execute(images("together/black-forest-labs/FLUX.1-schnell", size="big"))
    assert reply.status == 400
    assert jsonx.loads(reply.body)["error"]["param"] == "size"


# -- transcription ------------------------------------------------------------------------------------------------


async def test_openai_transcription_passes_the_form_with_the_model_rewritten(rig: Rig) -> None:
    request = transcribe("openai/gpt-4o-transcribe")
    reply = await rig.engine.execute(request)
    assert reply.status == 200, reply.body
    sent = rig.openai.requests[-1]
    assert sent.path == "/v1/audio/transcriptions"
    assert sent.headers["Content-Type"] == request.meta.content_type
    assert sent.body == request.body.replace(b"openai/gpt-4o-transcribe", b"gpt-4o-transcribe")
    assert jsonx.loads(reply.body)["text"] == TRANSCRIPT
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (20, 11)


async def test_openai_text_transcription_keeps_its_media_type(rig: Rig) -> None:
    reply = await rig.engine.execute(transcribe("openai/whisper-1", response_format="text"))
    assert (reply.status, reply.body) == (200, TRANSCRIPT.encode())
    assert reply.content_type.startswith("text/plain")


async def test_deepgram_gets_raw_audio_and_answers_in_openai_shape(rig: Rig) -> None:
    reply = await rig.engine.execute(transcribe("deepgram/nova-3", language="fr"))
    assert reply.status == 200, reply.body
    sent = rig.deepgram.requests[-1]
    assert sent.path == "/v1/listen?model=nova-3&smart_format=true&language=fr"
    assert sent.headers["Authorization"] == f"Token {KEY}"
    assert sent.headers["Content-Type"] == "audio/wav"
    assert sent.body == WAV
    assert jsonx.loads(reply.body) == {
        "text": TRANSCRIPT,
        "task": "transcribe",
        "language": "fr",
        "duration": AUDIO_SECONDS,
    }
    reply = await rig.engine.execute(transcribe("dg/nova-3", response_format="text"))
    assert (reply.body, rig.deepgram.requests[-1].path) == (
        TRANSCRIPT.encode(),
        "/v1/listen?model=nova-3&smart_format=true&detect_language=true",
    )


async def test_assemblyai_uploads_creates_and_polls(rig: Rig) -> None:
    reply = await rig.engine.execute(transcribe("assemblyai/best"))
    assert reply.status == 200, reply.body
    upload, create, *polls = rig.assemblyai.requests
    assert (upload.method, upload.path, upload.body) == ("POST", "/v2/upload", WAV)
    assert upload.headers["Authorization"] == KEY
    assert upload.headers["Content-Type"] == "application/octet-stream"
    assert (create.path, create.json) == (
        "/v2/transcript",
        {"audio_url": "https://cdn.fake.test/upload/u1", "speech_model": "best", "language_detection": True},
    )
    assert [(p.method, p.path) for p in polls] == [("GET", "/v2/transcript/t1")] * 3
    assert jsonx.loads(reply.body) == {
        "text": TRANSCRIPT,
        "task": "transcribe",
        "language": "en",
        "duration": AUDIO_SECONDS,
    }
    await rig.engine.execute(transcribe("assemblyai/universal-2", language="de"))
    assert rig.assemblyai.jobs["t2"]["request"] == {
        "audio_url": "https://cdn.fake.test/upload/u2",
        "speech_models": ["universal-2"],
        "language_code": "de",
    }


async def test_assemblyai_job_error_is_a_502(rig: Rig) -> None:
    rig.assemblyai.script.extend(
        [
            Reply(json={"upload_url": "https://cdn.fake.test/upload/x"}),
            Reply(json={"id": "t9", "status": "queued"}),
            Reply(json={"id": "t9", "status": "error", "error": "Audio duration is too short."}),
        ]
    )
    reply = await rig.engine.execute(transcribe("assemblyai/best"))
    assert reply.status == 502
    assert "Audio duration is too short." in jsonx.loads(reply.body)["error"]["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"--x\r\nnot a form", "multipart/form-data; boundary=x", "invalid multipart body"),
        (b"{}", "application/json", "invalid multipart body"),
    ],
)
async def test_a_bad_form_is_400(rig: Rig, body: bytes, content_type: str, message: str) -> None:
    reply = await rig.engine.execute(call(common_pb2.OPERATION_TRANSCRIPTION, "deepgram/nova-3", body, content_type))
    assert reply.status == 400
    assert message in jsonx.loads(reply.body)["error"]["message"]


async def test_audio_that_is_no_supported_format_is_400(rig: Rig) -> None:
    body, ctype = form({"model": "deepgram/nova-3"}, audio=b"%PDF-1.7 not audio")
    reply = await rig.engine.execute(call(common_pb2.OPERATION_TRANSCRIPTION, "deepgram/nova-3", body, ctype))
    assert reply.status == 400
    assert "unsupported audio format" in jsonx.loads(reply.body)["error"]["message"]
    assert rig.deepgram.requests == []
    reply = await rig.engine.execute(transcribe("deepgram/nova-3", response_format="xml"))
    assert reply.status == 400
    assert jsonx.loads(reply.body)["error"]["param"] == "response_format"
    assert "accepted: json, verbose_json, text, srt, vtt" in jsonx.loads(reply.body)["error"]["message"]


SRT = "1\n00:00:00,080 --> 00:00:02,300\nHello, this is the transcribed audio content.\n\n"
VTT = "WEBVTT\n\n00:00:00.080 --> 00:00:02.300\nHello, this is the transcribed audio content.\n\n"


@pytest.mark.parametrize("model", ["deepgram/nova-3", "assemblyai/best"])
async def test_captions_are_timed_from_the_providers_word_timings(rig: Rig, model: str) -> None:
    reply = await rig.engine.execute(transcribe(model, response_format="srt"))
    assert (reply.status, reply.body.decode()) == (200, SRT)
    assert reply.content_type.startswith("text/plain")
    reply = await rig.engine.execute(transcribe(model, response_format="vtt"))
    assert (reply.status, reply.body.decode()) == (200, VTT)
    body, ctype = form({"model": model, "response_format": "verbose_json", "timestamp_granularities[]": "word"})
    verbose = jsonx.loads((await rig.engine.execute(call(common_pb2.OPERATION_TRANSCRIPTION, model, body, ctype))).body)
    assert verbose["segments"] == [
        {"id": 0, "seek": 0, "start": 0.08, "end": 2.3, "text": TRANSCRIPT, "tokens": [], "temperature": 0.0}
    ]
    assert verbose["words"][0] == {"word": "Hello,", "start": 0.08, "end": 0.4}
    assert len(verbose["words"]) == 7


async def test_streaming_call_of_a_non_chat_operation_is_one_chunk(rig: Rig) -> None:
    chunks = [c async for c in rig.engine.execute_stream(embed("openai/text-embedding-3-small"))]
    assert len(chunks) == 1 and chunks[0].status == 200
    assert jsonx.loads(chunks[0].data)["object"] == "list"
