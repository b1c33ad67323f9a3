"""The service process: settings from the environment, gRPC + health + metrics, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import urllib.request

import pytest

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
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
    assert (TranslatorSettings().translator_port, TranslatorSettings().metrics_port) == (50051, 9101)
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
