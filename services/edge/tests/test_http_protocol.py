"""Writes made in one loop step leave as one write; close() flushes first; nothing is written after close; a
complete reply leaves at once; the disconnect watch fires when a client leaves."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import uvicorn

from omniroute_devservers.servers import free_port
from omniroute_edge.http_protocol import DISCONNECT_WATCH, CoalescingTransport, DisconnectWatch, HttpProtocol


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_writes_of_one_step_are_joined_and_later_ones_are_not() -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert inner.writes == []
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"event")
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"event"]


async def test_close_flushes_first_and_later_writes_are_dropped() -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"last")
    transport.close()
    assert inner.writes == [b"last"]
    assert inner.closed
    transport.write(b"too late")
    await asyncio.sleep(0)
    assert inner.writes == [b"last"]


async def test_everything_else_is_the_wrapped_transports() -> None:
    transport = CoalescingTransport(FakeTransport(), asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == "info:peername"


def test_a_watch_runs_its_callbacks_once_on_loss_and_late_ones_at_once() -> None:
    watch = DisconnectWatch()
    seen: list[str] = []
    watch.add(lambda: seen.append("a"))
    gone = lambda: seen.append("b")  # noqa: E731
    watch.add(gone)
    watch.discard(gone)  # a relay that finished deregisters
    watch.fire()
    assert seen == ["a"] and watch.lost
    watch.fire()
    assert seen == ["a"]  # callbacks run once
    watch.add(lambda: seen.append("late"))  # registered after the loss: runs now
    assert seen == ["a", "late"]


async def _serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=HttpProtocol, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, port


def _exchange(port: int, request: bytes, *, close_after_send: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        if close_after_send:
            return b""
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"done"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


REQUEST = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}"


async def test_a_complete_reply_leaves_before_the_rest_of_the_step() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"done"})
        time.sleep(0.5)  # the loop is blocked: only a write made already can reach the client meanwhile

    server, task, port = await _serve(app)
    try:

        def timed() -> tuple[bytes, float]:
            started = time.monotonic()  # timed in the client's thread: the server's loop is blocked meanwhile
            return _exchange(port, REQUEST), time.monotonic() - started

        reply, took = await asyncio.to_thread(timed)
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"done")
        assert took < 0.45
    finally:
        server.should_exit = True
        await task


async def test_the_watch_in_the_scope_fires_when_the_client_leaves() -> None:
    left = asyncio.Event()
    watches: list[DisconnectWatch] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        watch = scope["extensions"][DISCONNECT_WATCH]
        watches.append(watch)
        watch.add(left.set)
        await asyncio.sleep(10)  # a slow upstream call; the client does not wait for it

    server, task, port = await _serve(app)
    try:
        await asyncio.to_thread(_exchange, port, REQUEST, close_after_send=True)
        await asyncio.wait_for(left.wait(), 5)
        assert watches[0].lost
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
