"""The service process: settings from the environment, gRPC + health + metrics, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import urllib.request

import grpc
import pytest

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core import grpcx
from omniroute_core.grpcx import insecure_channel, wait_healthy
from omniroute_translator.main import serve
from omniroute_translator.server import SERVICE_NAME
from omniroute_translator.settings import TranslatorSettings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSLATOR_PORT", raising=False)
    monkeypatch.delenv("METRICS_PORT", raising=False)
    monkeypatch.delenv("TRANSLATOR_SERVER", raising=False)
    assert (TranslatorSettings().translator_port, TranslatorSettings().metrics_port) == (50051, 9101)
    assert TranslatorSettings().translator_server == "h2"  # the in-loop server; TRANSLATOR_SERVER=grpc for stock
    monkeypatch.setenv("TRANSLATOR_PORT", "6000")
    monkeypatch.setenv("METRICS_PORT", "0")
    assert (TranslatorSettings().translator_port, TranslatorSettings().metrics_port) == (6000, 0)


async def test_serve_until_stopped() -> None:
    port = _free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(TranslatorSettings(translator_port=port, metrics_port=0), stop))
    addr = f"127.0.0.1:{port}"
    assert await wait_healthy(addr, service=SERVICE_NAME)
    async with insecure_channel(addr) as channel:
        stub = translator_pb2_grpc.TranslatorStub(channel)
        reply = await stub.RenderError(
            translator_pb2.RenderErrorIn(target=common_pb2.FORMAT_OPENAI_CHAT, error=common_pb2.Error(message="x"))
        )
    assert reply.content_type == "application/json"
    stop.set()
    await asyncio.wait_for(task, 10)


_CHUNKS = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"Hi there"},"finish_reason":null}]}\n\n',
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
)


@pytest.mark.parametrize(("server", "client"), [("h2", "asyncio"), ("h2", "grpc"), ("grpc", "asyncio")])
async def test_translate_stream_on_either_server_and_client(server: grpcx.ServerKind, client: grpcx.ClientKind) -> None:
    """TranslateStream (bidirectional) through H2Server (the default) or grpc.aio, called by H2Channel (the
    executor's default) or grpc.aio: a translated stream, and a refused one whose remaining input is drained."""
    port = _free_port()
    stop = asyncio.Event()
    settings = TranslatorSettings(translator_port=port, metrics_port=0, translator_server=server, warm_tokenizers=False)
    task = asyncio.create_task(serve(settings, stop))
    addr = f"127.0.0.1:{port}"
    assert await wait_healthy(addr, service=SERVICE_NAME)
    channel = grpcx.channel(addr, client)
    try:
        stub = translator_pb2_grpc.TranslatorStub(channel)
        setup = translator_pb2.StreamSetup(
            source=common_pb2.FORMAT_OPENAI_CHAT, target=common_pb2.FORMAT_ANTHROPIC_MESSAGES, model="m"
        )
        requests = [translator_pb2.StreamIn(setup=setup), *(translator_pb2.StreamIn(data=c) for c in _CHUNKS)]
        replies = [out async for out in stub.TranslateStream(iter(requests), timeout=10)]
        assert b"Hi there" in b"".join(out.data for out in replies)
        assert replies[-1].done and replies[-1].complete
        refused = stub.TranslateStream(iter([translator_pb2.StreamIn(data=b"no setup")] * 50), timeout=10)
        [only] = [out async for out in refused]
        assert only.done and only.error.status == 400
        assert await refused.code() == grpc.StatusCode.OK
    finally:
        await channel.close()
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_process_serves_metrics_and_exits_cleanly_on_sigterm() -> None:
    port, metrics_port = _free_port(), _free_port()
    env = {**os.environ, "TRANSLATOR_PORT": str(port), "METRICS_PORT": str(metrics_port), "LOG_LEVEL": "INFO"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "omniroute_translator.main",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert await wait_healthy(f"127.0.0.1:{port}", timeout=20, service=SERVICE_NAME)
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
        assert "translator_call_seconds" in text
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
        assert proc.stderr is not None
        logs = (await proc.stderr.read()).decode()
        assert code == 0, logs
        assert '"msg":"translator stopping"' in logs
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
