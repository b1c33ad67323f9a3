"""GRPC_MAX_CONNECTION_AGE_S: the translator's server sends GOAWAY to older connections; clients reconnect."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import grpc

from omniroute.v1 import common_pb2, translator_pb2, translator_pb2_grpc
from omniroute_core.grpc_h2 import H2Channel
from omniroute_core.grpcx import MAX_MESSAGE, wait_healthy
from omniroute_translator.main import serve
from omniroute_translator.server import SERVICE_NAME
from omniroute_translator.settings import TranslatorSettings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_off_by_default() -> None:
    assert TranslatorSettings().grpc_max_connection_age_s == 0


async def test_max_connection_age_reaches_the_server() -> None:
    """Connections older than the age get GOAWAY; the client reconnects and no call fails."""
    port = _free_port()
    stop = asyncio.Event()
    settings = TranslatorSettings(
        translator_port=port, metrics_port=0, warm_tokenizers=False, grpc_max_connection_age_s=0.2
    )
    task = asyncio.create_task(serve(settings, stop))
    addr = f"127.0.0.1:{port}"
    assert await wait_healthy(addr, service=SERVICE_NAME)
    request = translator_pb2.RenderErrorIn(target=common_pb2.FORMAT_OPENAI_CHAT, error=common_pb2.Error(message="x"))
    connections: set[object] = set()
    async with H2Channel(addr, max_message=MAX_MESSAGE) as channel:
        stub = translator_pb2_grpc.TranslatorStub(cast(grpc.aio.Channel, channel))
        end = asyncio.get_running_loop().time() + 1.0
        while asyncio.get_running_loop().time() < end:
            assert (await stub.RenderError(request)).content_type == "application/json"
            connections.add(channel._conn)  # pinned: the one address's connection
            await asyncio.sleep(0.01)
    assert len(connections) >= 3
    stop.set()
    await asyncio.wait_for(task, 10)
