"""Writes made in one loop step leave as one write; close() flushes first; nothing is written after close."""

from __future__ import annotations

import asyncio

from omniroute_edge.http_protocol import CoalescingTransport


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
