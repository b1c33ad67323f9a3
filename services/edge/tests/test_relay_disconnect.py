"""How the relay learns that its client left: from our protocol's DisconnectWatch, or, under any other ASGI
server, from ``receive()`` returning ``http.disconnect``. Either way the executor call is cancelled, the relay
ends 499, and nothing is left waiting once the call is over."""

from __future__ import annotations

import asyncio
from typing import Any

from omniroute_edge.http_protocol import DISCONNECT_WATCH, DisconnectWatch
from omniroute_edge.relay import _until_disconnect


class Call:
    """Stands for the executor call: ``work`` waits on it; ``cancel`` makes that wait raise CancelledError."""

    def __init__(self) -> None:
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.cancels = 0

    def cancel(self) -> None:
        self.cancels += 1
        self.done.cancel()

    async def work(self) -> int:
        return await self.done


class Client:
    """``receive`` for a server without the watch: waits until the test says the client left."""

    def __init__(self) -> None:
        self.left = asyncio.Event()
        self.waiting = 0

    async def receive(self) -> dict[str, Any]:
        self.waiting += 1
        try:
            await self.left.wait()
        finally:
            self.waiting -= 1
        return {"type": "http.disconnect"}


def watched() -> tuple[dict[str, Any], DisconnectWatch]:
    watch = DisconnectWatch()
    return {"extensions": {DISCONNECT_WATCH: watch}}, watch


async def steps() -> None:
    """A few turns of the loop: the relay starts, and its watcher task too."""
    for _ in range(3):
        await asyncio.sleep(0)


async def never() -> dict[str, Any]:
    raise AssertionError("with the watch in the scope, receive() is not used")


async def test_with_the_watch_a_client_leaving_cancels_the_call_and_the_relay_ends_499() -> None:
    call = Call()
    scope, watch = watched()
    relay = asyncio.ensure_future(_until_disconnect(call.work(), scope, never, call.cancel))
    await steps()
    watch.fire()
    assert await relay == 499
    assert call.cancels == 1


async def test_with_the_watch_a_finished_call_leaves_no_callback_behind() -> None:
    call = Call()
    scope, watch = watched()
    relay = asyncio.ensure_future(_until_disconnect(call.work(), scope, never, call.cancel))
    await steps()
    call.done.set_result(200)
    assert await relay == 200
    watch.fire()  # the connection closes later (keep-alive): the finished call is not cancelled
    assert call.cancels == 0


async def test_without_the_watch_receive_reports_the_disconnect() -> None:
    call, client = Call(), Client()
    relay = asyncio.ensure_future(_until_disconnect(call.work(), {}, client.receive, call.cancel))
    await steps()
    assert client.waiting == 1
    client.left.set()
    assert await relay == 499
    assert call.cancels == 1


async def test_without_the_watch_the_waiting_receive_ends_with_the_call() -> None:
    call, client = Call(), Client()
    relay = asyncio.ensure_future(_until_disconnect(call.work(), {}, client.receive, call.cancel))
    await steps()
    call.done.set_result(200)
    assert await relay == 200
    await steps()
    assert client.waiting == 0  # the watcher task was cancelled, not left waiting for the next request's body
    assert call.cancels == 0


async def test_a_cancellation_from_elsewhere_is_not_a_499() -> None:
    # the request's own task cancelled (the server stopping): not the client's doing, so it propagates
    call = Call()
    scope, _ = watched()
    relay = asyncio.ensure_future(_until_disconnect(call.work(), scope, never, call.cancel))
    await steps()
    relay.cancel()
    try:
        await relay
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed")
    assert call.cancels == 0
