"""Reading requests by body kind: multipart transcription forms, listings, dedicated provider routes."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute.v1 import common_pb2
from omniroute_core.catalog import load_catalog
from omniroute_core.nodes import ProviderNode
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_edge.bodies import BodyError, read_request
from omniroute_edge.routes import ROUTES, Route

CATALOG = load_catalog()
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32


def route(path: str, method: str = "POST") -> Route:
    return next(r for r in ROUTES if r.path == path and method in r.methods)


def target(
    r: Route, body: bytes, params: dict[str, str], content_type: str = ""
) -> tuple[dict[str, Any], str, bool, common_pb2.Operation.ValueType]:
    parsed = read_request(r, body, content_type, params, CATALOG)
    return parsed.doc, parsed.model, parsed.stream, parsed.operation


def form(fields: dict[str, str], audio: bytes | None = WAV, filename: str = "a.wav") -> tuple[bytes, str]:
    out = b""
    for name, value in fields.items():
        out += f'--b0\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    if audio is not None:
        out += f'--b0\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n'.encode()
        out += audio + b"\r\n"
    return out + b"--b0--\r\n", "multipart/form-data; boundary=b0"


def test_a_transcription_form_gives_its_model_and_no_stream() -> None:
    body, ctype = form({"model": "deepgram/nova-3", "language": "en", "stream": "true"})
    parsed = read_request(route("/v1/audio/transcriptions"), body, ctype, {}, CATALOG)
    assert (parsed.model, parsed.stream, parsed.operation) == (
        "deepgram/nova-3",
        False,
        common_pb2.OPERATION_TRANSCRIPTION,
    )
    assert parsed.content_type == ctype
    assert parsed.doc == {"model": "deepgram/nova-3", "language": "en", "stream": "true"}
    assert parsed.token_bytes < 50  # the audio is not prompt


@pytest.mark.parametrize(
    ("body_ctype", "message"),
    [
        (("x", "application/json"), "expected a multipart/form-data body"),
        (("x", "multipart/form-data"), "no valid boundary"),
        (
            (b'--b0\r\nContent-Disposition: form-data; name="model"\r\n\r\nm', "multipart/form-data; boundary=b0"),
            "ends before",
        ),
        (form({"language": "en"}), "'model' field is required"),
        (form({"model": "m"}, audio=None), "'file' part"),
        (form({"model": "m"}, audio=b"<html>not audio</html>", filename="a.mp3"), "unsupported audio format"),
    ],
)
def test_bad_forms_are_400(body_ctype: tuple[bytes | str, str], message: str) -> None:
    body, ctype = body_ctype
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(BodyError) as exc:
        read_request(route("/v1/audio/transcriptions"), raw, ctype, {}, CATALOG)
    assert exc.value.error.status == 400
    assert message in exc.value.error.message


@pytest.mark.parametrize(
    "audio",
    [
        b"ID3\x04\x00" + b"\x00" * 20,
        b"\xff\xfb\x90\x00" + b"\x00" * 20,
        WAV,
        b"fLaC" + b"\x00" * 20,
        b"OggS" + b"\x00" * 20,
        b"\x1a\x45\xdf\xa3" + b"\x00" * 20,
        b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 20,
    ],
)
def test_every_supported_audio_format_is_accepted(audio: bytes) -> None:
    body, ctype = form({"model": "m"}, audio=audio)
    assert read_request(route("/v1/audio/transcriptions"), body, ctype, {}, CATALOG).model == "m"


def test_listings_read_no_body() -> None:
    parsed = read_request(route("/v1/models", "GET"), b"", "", {}, CATALOG)
    assert (parsed.model, parsed.operation, parsed.doc) == ("", common_pb2.OPERATION_LIST_MODELS, {})
    assert route("/v1/embeddings", "GET").list_operations == (common_pb2.OPERATION_EMBEDDINGS,)
    assert route("/api/tags", "GET").format == common_pb2.FORMAT_OLLAMA_CHAT
    assert route("/v1beta/models", "GET").format == common_pb2.FORMAT_GEMINI


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o", "openai/gpt-4o"),
        ("openai", "openai/gpt-4o", "openai/gpt-4o"),
        ("openai", "oai/gpt-4o", "oai/gpt-4o"),
        ("oai", "gpt-4o", "openai/gpt-4o"),
        ("nebius", "Qwen/Qwen3-Embedding-8B", "nebius/Qwen/Qwen3-Embedding-8B"),
    ],
)
def test_a_provider_route_adds_the_prefix_when_missing(provider: str, model: str, expected: str) -> None:
    r = route("/v1/providers/{provider}/embeddings")
    body = b'{"model": "%s", "input": "x"}' % model.encode()
    assert target(r, body, {"provider": provider})[1] == expected


def test_a_provider_route_refuses_another_providers_model_and_an_unknown_provider() -> None:
    r = route("/v1/providers/{provider}/chat/completions")
    with pytest.raises(BodyError) as exc:
        target(r, b'{"model": "anthropic/claude-sonnet-4-5"}', {"provider": "openai"})
    assert (exc.value.error.status, exc.value.error.code) == (400, "provider_mismatch")
    with pytest.raises(BodyError) as exc:
        target(r, b'{"model": "m"}', {"provider": "nope"})
    assert exc.value.error.status == 404


def test_embeddings_and_images_never_stream() -> None:
    assert target(route("/v1/embeddings"), b'{"model": "m", "input": "x", "stream": true}', {})[2] is False
    assert (
        target(
            route("/v1/providers/{provider}/chat/completions"),
            b'{"model": "m", "stream": true}',
            {"provider": "openai"},
        )[2]
        is True
    )


def test_a_provider_route_knows_provider_nodes_by_their_prefix() -> None:
    node = ProviderNode("openai-compatible-1", "acme", "ACME", "openai-compatible", "chat", "http://acme/v1")
    snapshot = ConfigSnapshot.build(1, (), (), {}, nodes=(node,))
    r = route("/v1/providers/{provider}/chat/completions")
    for model, expected in (("llama-3", "acme/llama-3"), ("acme/llama-3", "acme/llama-3")):
        body = b'{"model": "%s"}' % model.encode()
        assert read_request(r, body, "", {"provider": "acme"}, CATALOG, snapshot).model == expected
    with pytest.raises(BodyError) as exc:
        read_request(r, b'{"model": "openai/gpt-4o"}', "", {"provider": "acme"}, CATALOG, snapshot)
    assert exc.value.error.code == "provider_mismatch"
    with pytest.raises(BodyError) as exc:
        read_request(r, b'{"model": "m"}', "", {"provider": "acme"}, CATALOG)  # a snapshot without the node
    assert exc.value.error.status == 404
