"""Embeddings, images, transcription, model listings and the dedicated provider routes across every service, with
the official SDKs (openai, google-genai, ollama) pointed at the edge and fakes of each provider's wire behind it;
every refusal in the client's own format."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import ollama
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from omniroute_core import jsonx
from omniroute_devservers.control import config_synced, make_key, make_provider, until_ok
from omniroute_devservers.fake_media import (
    AUDIO_SECONDS,
    IMAGE_URL,
    TRANSCRIPT,
    FakeAssemblyAI,
    FakeDeepgram,
    fake_vector,
)
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 256
SCOPES = ["chat", "embeddings", "images", "audio"]


@dataclass
class Env:
    edge: str
    key: str
    upstream: FakeOpenAI
    mistral: FakeOpenAI
    deepgram: FakeDeepgram
    assemblyai: FakeAssemblyAI

    def client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.edge + "/v1", api_key=self.key, max_retries=0)


@pytest.fixture(scope="module")
async def env(admin: httpx.AsyncClient, suite: Suite, fake_openai: FakeOpenAI) -> AsyncIterator[Env]:
    mistral, deepgram, assemblyai = FakeOpenAI(), FakeDeepgram(), FakeAssemblyAI(polls=2)
    for fake in (mistral, deepgram, assemblyai):
        await fake.start()
    await make_provider(admin, "mistral", mistral.base_url)
    await make_provider(admin, "deepgram", deepgram.base_url)
    await make_provider(admin, "assemblyai", assemblyai.base_url)
    combo = {
        "name": "embed-fallback",
        "strategy": "priority",
        "models": ["mistral/mistral-embed", "openai/text-embedding-3-small"],
    }
    resp = await admin.post("/api/combos", json=combo)
    assert resp.status_code == 201, resp.text
    _, key = await make_key(admin, SCOPES)
    await config_synced(admin, [suite.edge_url])
    environment = Env(suite.edge_url, key, fake_openai, mistral, deepgram, assemblyai)

    async def probe() -> None:
        async with environment.client() as client:
            await client.embeddings.create(model="mistral/mistral-embed", input="ping")

    await until_ok(probe, timeout=5)
    yield environment
    for fake in (mistral, deepgram, assemblyai):
        await fake.stop()


async def stored_usage(suite: Suite, request_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(suite.database_url)
    try:

        async def rows() -> list[asyncpg.Record]:
            found = await conn.fetch("SELECT * FROM usage_events WHERE request_id = $1 ORDER BY attempt", request_id)
            assert found
            return list(found)

        out: list[list[asyncpg.Record]] = []

        async def keep() -> None:
            out.append(await rows())

        await until_ok(keep, timeout=10)
        return out[-1]
    finally:
        await conn.close()


# -- embeddings -----------------------------------------------------------------------------------------------


async def test_embeddings_with_the_openai_sdk_are_metered(env: Env, suite: Suite) -> None:
    rid = uuid.uuid4().hex
    async with env.client() as client:
        result = await client.embeddings.create(
            model="openai/text-embedding-3-small", input=["hello world", "bye"], extra_headers={"X-Request-Id": rid}
        )
    # the SDK asked for base64 and decoded it: the vectors are the fake's
    assert [d.embedding for d in result.data] == [
        pytest.approx(fake_vector("hello world")),
        pytest.approx(fake_vector("bye")),
    ]
    sent = env.upstream.requests[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.json == {
        "input": ["hello world", "bye"],
        "model": "text-embedding-3-small",
        "encoding_format": "base64",
    }
    [row] = await stored_usage(suite, rid)
    assert (row["provider"], row["model"], row["status"], row["input_tokens"]) == (
        "openai",
        "text-embedding-3-small",
        200,
        3,
    )
    assert row["endpoint"] == "/v1/embeddings"


async def test_local_embeddings_with_the_openai_sdk(env: Env) -> None:
    async with env.client() as client:
        result = await client.embeddings.create(
            model="local/all-minilm-l6-v2", input=["The food was delicious", "The meal tasted wonderful"]
        )
    a, b = (d.embedding for d in result.data)
    assert len(a) == 384 and result.model == "all-minilm-l6-v2"
    assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.7
    assert result.usage.prompt_tokens == 12


async def test_a_5xx_from_the_first_provider_falls_back_in_the_combo(env: Env) -> None:
    env.mistral.script.append(Reply(status=503, raw=b"overloaded"))
    async with env.client() as client:
        result = await client.embeddings.create(model="embed-fallback", input="hello world")
    assert result.data[0].embedding == pytest.approx(fake_vector("hello world"))
    assert env.mistral.requests[-1].json["model"] == "mistral-embed"
    assert env.upstream.requests[-1].json["model"] == "text-embedding-3-small"


async def test_embedding_failures_in_openai_format(env: Env) -> None:
    async with env.client() as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.embeddings.create(model="nope/embedder", input="x")
        assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as incapable:
            await client.embeddings.create(model="deepgram/nova-3", input="x")
        assert "does not support embeddings" in incapable.value.message


# -- images -----------------------------------------------------------------------------------------------------


async def test_images_with_the_openai_sdk(env: Env) -> None:
    async with env.client() as client:
        result = await client.images.generate(model="openai/dall-e-3", prompt="A sunset", size="1024x1024")
    assert result.data is not None and result.data[0].url == IMAGE_URL
    assert env.upstream.requests[-1].json == {"model": "dall-e-3", "prompt": "A sunset", "size": "1024x1024"}


# -- transcription ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fake"),
    [("openai/whisper-1", "openai"), ("deepgram/nova-3", "deepgram"), ("assemblyai/best", "assemblyai")],
)
async def test_transcription_with_the_openai_sdk(env: Env, model: str, fake: str) -> None:
    async with env.client() as client:
        result = await client.audio.transcriptions.create(model=model, file=("clip.wav", WAV, "audio/wav"))
    assert result.text == TRANSCRIPT
    if fake != "openai":  # converted into the API reference's shape
        extra = result.model_extra or {}
        assert (extra["task"], extra["language"], extra["duration"]) == ("transcribe", "en", AUDIO_SECONDS)


async def test_transcription_reply_shape_for_a_plain_client(env: Env) -> None:
    async with httpx.AsyncClient(base_url=env.edge, headers={"Authorization": f"Bearer {env.key}"}) as http:
        resp = await http.post(
            "/v1/audio/transcriptions", files={"file": ("clip.wav", WAV)}, data={"model": "deepgram/nova-3"}
        )
    assert resp.status_code == 200
    assert resp.json() == {"text": TRANSCRIPT, "task": "transcribe", "language": "en", "duration": AUDIO_SECONDS}
    assert env.deepgram.requests[-1].body == WAV


async def test_transcription_refusals_in_openai_format(env: Env) -> None:
    headers = {"Authorization": f"Bearer {env.key}"}
    async with httpx.AsyncClient(base_url=env.edge, headers=headers, timeout=30) as http:
        bad_form = await http.post(
            "/v1/audio/transcriptions",
            content=b"--x\r\nbroken",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        not_audio = await http.post(
            "/v1/audio/transcriptions", files={"file": ("notes.mp3", b"%PDF-1.7")}, data={"model": "deepgram/nova-3"}
        )
        too_big = await http.post(
            "/v1/audio/transcriptions",
            files={"file": ("big.wav", WAV + b"\x00" * (10 * 1024 * 1024))},
            data={"model": "deepgram/nova-3"},
        )
    assert bad_form.status_code == 400 and bad_form.json()["error"]["code"] == "invalid_multipart"
    assert not_audio.status_code == 400 and "unsupported audio format" in not_audio.json()["error"]["message"]
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "body_too_large"


# -- listings ---------------------------------------------------------------------------------------------------


async def test_model_listings_with_the_openai_sdk(env: Env) -> None:
    async with env.client() as client:
        every = {m.id: m.owned_by async for m in client.models.list()}
        embeddings = [m["id"] for m in (await client.get("/embeddings", cast_to=httpx.Response)).json()["data"]]
    assert every["openai/gpt-4o"] == "openai"
    assert every["openai/text-embedding-3-small"] == "openai"
    assert every["openai/dall-e-3"] == "openai"
    assert every["deepgram/nova-3"] == "deepgram"
    assert every["local/all-minilm-l6-v2"] == "local"
    assert every["embed-fallback"] == "combo"
    assert "anthropic/claude-sonnet-4-5" not in every or every["anthropic/claude-sonnet-4-5"] == "anthropic"
    assert "mistral/mistral-embed" in embeddings and "local/all-minilm-l6-v2" in embeddings
    assert "embed-fallback" in embeddings and "openai/gpt-4o" not in embeddings


async def test_image_listing_and_an_empty_scope_key(env: Env, admin: httpx.AsyncClient, suite: Suite) -> None:
    async with httpx.AsyncClient(base_url=env.edge, headers={"Authorization": f"Bearer {env.key}"}) as http:
        listed = (await http.get("/v1/images/generations")).json()
    assert listed["object"] == "list"
    assert {"openai/dall-e-3", "openai/gpt-image-1"} <= {m["id"] for m in listed["data"]}
    _, admin_only = await make_key(admin, ["admin"])
    await config_synced(admin, [suite.edge_url])
    async with httpx.AsyncClient(base_url=env.edge, headers={"Authorization": f"Bearer {admin_only}"}) as http:
        refused = await http.get("/v1/models")
    # REQUIRE_API_KEY is off in the suite, but a known key is always checked
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"


async def test_gemini_listing_with_google_genai(env: Env) -> None:
    client = genai.Client(api_key=env.key, http_options=gtypes.HttpOptions(base_url=env.edge, api_version="v1beta"))
    async with client.aio as aio:
        names = [m.name async for m in await aio.models.list()]
    assert "models/openai/gpt-4o" in names
    assert "models/local/all-minilm-l6-v2" not in names  # Gemini clients are shown chat models


async def test_ollama_listing_with_the_ollama_client(env: Env) -> None:
    async with ollama.AsyncClient(host=env.edge, headers={"Authorization": f"Bearer {env.key}"}) as client:
        listed = await client.list()
    names = [m.model for m in listed.models]
    assert "openai/gpt-4o" in names and "embed-fallback" not in names


# -- dedicated provider routes ----------------------------------------------------------------------------------


async def test_provider_routes_add_the_prefix_and_refuse_a_mismatch(env: Env) -> None:
    async with openai.AsyncOpenAI(base_url=env.edge + "/v1/providers/openai", api_key=env.key, max_retries=0) as client:
        chat = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert chat.choices[0].message.content == env.upstream.text
        assert env.upstream.requests[-1].json["model"] == "gpt-4o"
        await client.embeddings.create(model="text-embedding-3-small", input="x")
        assert env.upstream.requests[-1].path == "/v1/embeddings"
        image = await client.images.generate(model="openai/dall-e-3", prompt="A sunset")
        assert image.data is not None and image.data[0].url == IMAGE_URL
        with pytest.raises(openai.BadRequestError) as mismatch:
            await client.embeddings.create(model="mistral/mistral-embed", input="x")
    assert mismatch.value.body["code"] == "provider_mismatch"  # type: ignore[index]


async def test_a_provider_route_refusal_stays_in_openai_format(env: Env) -> None:
    async with httpx.AsyncClient(base_url=env.edge, headers={"Authorization": f"Bearer {env.key}"}) as http:
        resp = await http.post("/v1/providers/nope/chat/completions", json={"model": "m", "messages": []})
    assert resp.status_code == 404
    assert jsonx.loads(resp.content)["error"]["code"] == "provider_not_found"
