"""H2Channel's client-side balancing over a name's addresses, and H2Server's maximum connection age.

Three real H2Server replicas listen on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (one port); the channel's resolver is
injected, as a headless Service's DNS records would give them.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import pytest

from omniroute_core import grpcx
from omniroute_core.grpc_h2 import H2Channel, H2Server
from omniroute_core.grpc_h2._wire import GOAWAY, frame
from omniroute_devservers.servers import free_port

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


class Replica:
    """One server: ``Who`` answers its address; ``Slow`` sleeps the seconds its request says first.
    ``grpcx_server`` (a grpcx.Server's kind and options) instead of ``options`` (H2Server's): a grpcx.Server."""

    def __init__(self, host: str, port: int, grpcx_server: dict[str, Any] | None = None, **options: Any) -> None:
        self.host = host
        self.calls = 0
        self.peers: set[str] = set()
        self.server: Any = H2Server(max_receive=1 << 20, **options)
        if grpcx_server is not None:
            self.server = grpcx.Server(f"{host}:{port}", [], **grpcx_server).server
        handlers: dict[str, Any] = {
            "Who": grpc.unary_unary_rpc_method_handler(self.who),
            "Slow": grpc.unary_unary_rpc_method_handler(self.slow),
            "Chat": grpc.stream_stream_rpc_method_handler(self.chat),
            "Left": grpc.unary_unary_rpc_method_handler(self.left),
        }
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Balance", handlers)])
        if grpcx_server is None:
            self.server.add_insecure_port(f"{host}:{port}")

    async def who(self, request: bytes, context: Any) -> bytes:
        self.calls += 1
        self.peers.add(context.peer())
        return self.host.encode()

    async def chat(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        self.calls += 1
        async for request in requests:
            yield request

    async def left(self, request: bytes, context: Any) -> bytes:
        """Sleeps ``request`` seconds, then answers the seconds left of the call's deadline."""
        self.peers.add(context.peer())
        await asyncio.sleep(float(request))
        return str(context.time_remaining()).encode()

    async def slow(self, request: bytes, context: Any) -> bytes:
        await asyncio.sleep(float(request))
        return await self.who(request, context)


class Names:
    """The resolver given to the channel: the addresses it answers can change, and it counts the lookups."""

    def __init__(self, hosts: Sequence[str]) -> None:
        self.hosts = list(hosts)
        self.lookups = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        assert host == "executor-headless"
        self.lookups += 1
        return list(self.hosts)


@pytest.fixture
async def replicas() -> AsyncIterator[dict[str, Replica]]:
    port = free_port()
    started = {host: Replica(host, port) for host in HOSTS}
    for replica in started.values():
        await replica.server.start()
    yield started
    for replica in started.values():
        await replica.server.stop(0)


def port_of(replicas: dict[str, Replica]) -> int:
    return int(next(iter(replicas.values())).server._sockets[0].getsockname()[1])


def who(channel: H2Channel) -> Callable[..., Any]:
    method: Callable[..., Any] = channel.unary_unary("/test.Balance/Who")
    return method


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.01)


async def warm(channel: H2Channel, hosts: Sequence[str]) -> None:
    """Calls until each of ``hosts`` has answered one (its connection is open)."""
    seen: set[str] = set()
    end = time.monotonic() + 5
    while not set(hosts) <= seen:
        assert time.monotonic() < end, f"only {seen} answered"
        seen.add((await who(channel)(b"")).decode())
        await asyncio.sleep(0.005)


def counts(replicas: dict[str, Replica]) -> dict[str, int]:
    return {host: replica.calls for host, replica in replicas.items()}


async def test_calls_go_round_robin_over_every_address(replicas: dict[str, Replica]) -> None:
    names = Names(HOSTS)
    async with H2Channel(f"executor-headless:{port_of(replicas)}", max_message=1 << 20, resolver=names) as channel:
        await warm(channel, HOSTS)
        before = counts(replicas)
        answers = [(await who(channel)(b"")).decode() for _ in range(30)]
        assert {host: replicas[host].calls - before[host] for host in HOSTS} == dict.fromkeys(HOSTS, 10)
        assert all(len(set(answers[i : i + 3])) == 3 for i in range(0, 30, 3))  # in turn, not in runs
        # concurrent calls spread too, each replica on one connection
        await asyncio.gather(*(who(channel)(b"") for _ in range(30)))
        assert all(len(replica.peers) == 1 for replica in replicas.values())
        assert names.lookups == 1  # the next lookup is resolve_interval_s away


async def test_one_address_is_pinned_and_costs_no_lookup_per_call(replicas: dict[str, Replica]) -> None:
    names = Names(["127.0.0.2"])
    async with H2Channel(f"executor-headless:{port_of(replicas)}", max_message=1 << 20, resolver=names) as channel:
        for _ in range(5):
            assert await who(channel)(b"") == b"127.0.0.2"
        assert channel._conn is not None and channel._conn.usable  # the fast path: no balancer per call
        assert names.lookups == 1
        assert replicas["127.0.0.2"].calls == 5 and len(replicas["127.0.0.2"].peers) == 1


async def test_a_stopped_server_is_skipped_without_a_failed_call(replicas: dict[str, Replica]) -> None:
    names = Names(HOSTS)
    async with H2Channel(f"executor-headless:{port_of(replicas)}", max_message=1 << 20, resolver=names) as channel:
        await warm(channel, HOSTS)
        running = True

        async def caller() -> int:
            done = 0
            while running:
                await who(channel)(b"")  # any failure fails the test
                done += 1
                await asyncio.sleep(0.002)
            return done

        callers = [asyncio.create_task(caller()) for _ in range(4)]
        await asyncio.sleep(0.1)
        await replicas["127.0.0.2"].server.stop(1.0)  # graceful: GOAWAY, calls received finish
        stopped_at = replicas["127.0.0.2"].calls
        await asyncio.sleep(0.3)
        running = False
        assert sum(await asyncio.gather(*callers)) > 20
        assert replicas["127.0.0.2"].calls == stopped_at
        before = counts(replicas)
        for _ in range(20):
            await who(channel)(b"")
        assert replicas["127.0.0.1"].calls - before["127.0.0.1"] == 10
        assert replicas["127.0.0.3"].calls - before["127.0.0.3"] == 10


async def test_a_server_gone_abruptly_fails_no_call_once_noticed(replicas: dict[str, Replica]) -> None:
    names = Names(HOSTS)
    async with H2Channel(f"executor-headless:{port_of(replicas)}", max_message=1 << 20, resolver=names) as channel:
        await warm(channel, HOSTS)
        gone = replicas["127.0.0.3"].server
        for conn in list(gone.connections):
            conn.transport.abort()  # no GOAWAY: the connection is reset
        await gone.stop(0)  # the listener closes with it: reconnecting is refused
        await asyncio.sleep(0.05)  # the reset reaches the channel
        answers = [(await who(channel)(b"")).decode() for _ in range(40)]
        assert "127.0.0.3" not in answers and set(answers) == {"127.0.0.1", "127.0.0.2"}
        await asyncio.sleep(0.05)  # not even while the refused address is retried in the background
        assert {(await who(channel)(b"")).decode() for _ in range(10)} == {"127.0.0.1", "127.0.0.2"}


async def test_no_address_answering_fails_unavailable_at_once() -> None:
    port = free_port()
    names = Names(HOSTS)
    async with H2Channel(f"executor-headless:{port}", max_message=1 << 20, resolver=names) as channel:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await who(channel)(b"", timeout=3)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "cannot connect" in (caught.value.details() or "")
        assert time.monotonic() - started < 1.0
        with pytest.raises(grpc.aio.AioRpcError):  # the next call tries every address again
            await who(channel)(b"")


async def test_a_name_that_does_not_resolve_fails_unavailable() -> None:
    async def broken(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    async with H2Channel("executor-headless:50052", max_message=1 << 20, resolver=broken) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await who(channel)(b"")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "cannot resolve executor-headless" in (caught.value.details() or "")


async def test_a_new_address_gets_calls(replicas: dict[str, Replica]) -> None:
    names = Names(HOSTS[:2])
    address = f"executor-headless:{port_of(replicas)}"
    async with H2Channel(address, max_message=1 << 20, resolver=names, resolve_interval_s=0.05) as channel:
        await warm(channel, HOSTS[:2])
        assert replicas["127.0.0.3"].calls == 0
        names.hosts.append("127.0.0.3")  # a replica scaled up
        await until(lambda: names.lookups >= 3)
        await warm(channel, HOSTS)
        before = counts(replicas)
        for _ in range(30):
            await who(channel)(b"")
        assert {host: replicas[host].calls - before[host] for host in HOSTS} == dict.fromkeys(HOSTS, 10)


async def test_one_address_then_several_unpins(replicas: dict[str, Replica]) -> None:
    names = Names(["127.0.0.1"])
    address = f"executor-headless:{port_of(replicas)}"
    async with H2Channel(address, max_message=1 << 20, resolver=names, resolve_interval_s=0.05) as channel:
        await who(channel)(b"")
        assert channel._conn is not None
        names.hosts = list(HOSTS)
        await until(lambda: channel._conn is None)
        await warm(channel, HOSTS)


async def test_a_vanished_address_drains_its_calls_then_closes(replicas: dict[str, Replica]) -> None:
    names = Names(HOSTS)
    address = f"executor-headless:{port_of(replicas)}"
    async with H2Channel(address, max_message=1 << 20, resolver=names, resolve_interval_s=0.05) as channel:
        await warm(channel, HOSTS)
        slow = channel.unary_unary("/test.Balance/Slow")
        calls = [asyncio.ensure_future(slow(b"0.5")) for _ in range(3)]  # one on each connection
        await until(lambda: all(len(replica.server.connections) == 1 for replica in replicas.values()))
        await asyncio.sleep(0.05)
        names.hosts = HOSTS[:2]  # 127.0.0.3 scaled down
        lookups = names.lookups
        await until(lambda: names.lookups > lookups + 1)
        answers = [(await who(channel)(b"")).decode() for _ in range(10)]
        assert "127.0.0.3" not in answers
        assert len(replicas["127.0.0.3"].server.connections) == 1  # its call still runs
        assert sorted(await asyncio.gather(*calls)) == sorted(host.encode() for host in HOSTS)
        await until(lambda: not replicas["127.0.0.3"].server.connections)  # then the channel closed it


async def test_max_connection_age_reconnects_without_a_failed_call() -> None:
    port = free_port()
    replica = Replica("127.0.0.1", port, max_connection_age_s=0.2)
    await replica.server.start()
    try:
        async with H2Channel(f"127.0.0.1:{port}", max_message=1 << 20) as channel:
            slow = asyncio.ensure_future(channel.unary_unary("/test.Balance/Slow")(b"0.8"))
            end = time.monotonic() + 1.2
            answered = 0
            while time.monotonic() < end:  # any failed call fails the test
                await asyncio.gather(*(who(channel)(b"") for _ in range(3)))
                answered += 3
                await asyncio.sleep(0.005)
            assert await slow == b"127.0.0.1"  # it outlived its connection's age: calls running finish
            assert len(replica.peers) >= 3  # about one connection per 0.2 s
            await until(lambda: len(replica.server.connections) <= 1)  # the old ones closed as their calls ended
            assert answered > 30
    finally:
        await replica.server.stop(0)


@pytest.mark.parametrize("kind", ["h2", "grpc"])
async def test_grpcx_server_max_connection_age(kind: str) -> None:
    """grpcx.Server passes the age to either server; H2Channel follows a stock server's GOAWAY as well."""
    port = free_port()
    replica = Replica("127.0.0.1", port, grpcx_server={"kind": kind, "max_connection_age_s": 0.2})
    await replica.server.start()
    try:
        async with H2Channel(f"127.0.0.1:{port}", max_message=1 << 20) as channel:
            end = time.monotonic() + 1.5
            while time.monotonic() < end:  # any failed call fails the test
                await asyncio.gather(*(who(channel)(b"") for _ in range(3)))
                await asyncio.sleep(0.005)
            assert len(replica.peers) >= 3
    finally:
        await replica.server.stop(0)


async def test_the_system_resolver_finds_a_name() -> None:
    port = free_port()
    replica = Replica("127.0.0.1", port)
    await replica.server.start()
    try:
        async with H2Channel(f"localhost:{port}", max_message=1 << 20) as channel:
            for _ in range(5):  # localhost may also be ::1, where nothing listens: skipped
                assert await who(channel)(b"") == b"127.0.0.1"
        assert replica.calls == 5
    finally:
        await replica.server.stop(0)


async def test_max_connection_age_grace_ends_long_calls() -> None:
    port = free_port()
    replica = Replica("127.0.0.1", port, max_connection_age_s=0.1, max_connection_age_grace_s=0.2)
    await replica.server.start()
    try:
        async with H2Channel(f"127.0.0.1:{port}", max_message=1 << 20) as channel:
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary("/test.Balance/Slow")(b"10")
            assert time.monotonic() - started < 2.0
            await until(lambda: not replica.server.connections)
            assert await who(channel)(b"") == b"127.0.0.1"  # a new connection
    finally:
        await replica.server.stop(0)


async def test_a_call_racing_the_goaway_is_sent_again_on_a_new_connection() -> None:
    port = free_port()
    replica = Replica("127.0.0.1", port)
    await replica.server.start()
    try:
        async with H2Channel(f"127.0.0.1:{port}", max_message=1 << 20) as channel:
            await who(channel)(b"")
            (server_conn,) = replica.server.connections
            call = asyncio.ensure_future(who(channel)(b""))
            await asyncio.sleep(0)  # the call's HEADERS are queued; the GOAWAY below names the stream before it
            server_conn.go_away(linger=True)
            assert await call == b"127.0.0.1"
            assert replica.calls == 2 and len(replica.peers) == 2  # refused on the first, run on the second
    finally:
        await replica.server.stop(0)


async def test_a_call_sent_again_keeps_its_deadline() -> None:
    port = free_port()
    replica = Replica("127.0.0.1", port)
    await replica.server.start()
    try:
        async with H2Channel(f"127.0.0.1:{port}", max_message=1 << 20) as channel:
            await who(channel)(b"")  # stream 1
            (server_conn,) = replica.server.connections
            call = asyncio.ensure_future(channel.unary_unary("/test.Balance/Left")(b"1.5", timeout=5))  # stream 3
            await asyncio.sleep(1.0)
            # a GOAWAY naming stream 1 as the last one processed: the client takes stream 3 as never processed
            server_conn.write(frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))
            left = float(await call)  # sent again after ~1 s, answered ~1.5 s later
            assert left < 3.2  # about 2.5: the deadline is the call's (a fresh one would leave about 3.5)
            assert len(replica.peers) == 2  # the second attempt on a new connection
    finally:
        await replica.server.stop(0)


async def test_a_streaming_request_racing_the_goaway_fails_unavailable_and_is_not_sent_again() -> None:
    port = free_port()
    replica = Replica("127.0.0.1", port)
    await replica.server.start()
    try:
        async with H2Channel(f"127.0.0.1:{port}", max_message=1 << 20) as channel:
            await who(channel)(b"")
            (server_conn,) = replica.server.connections
            call = channel.stream_stream("/test.Balance/Chat")()
            await call.write(b"a")  # its HEADERS and first request are queued, not sent: the requests are not kept
            server_conn.go_away(linger=True)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert replica.calls == 1  # only the first call ran
            call = channel.stream_stream("/test.Balance/Chat")()  # the next call takes a new connection
            await call.write(b"b")
            assert await call.read() == b"b"
            await call.done_writing()
    finally:
        await replica.server.stop(0)


async def test_grpc_aio_channels_of_grpcx_spread_calls_too(replicas: dict[str, Replica]) -> None:
    # the stock client (the dashboard's admin calls, EXECUTOR_CLIENT=grpc) takes round_robin from CHANNEL_OPTIONS;
    # an ipv4: target lists the addresses a headless Service's name resolves to
    target = "ipv4:" + ",".join(f"{host}:{port_of(replicas)}" for host in HOSTS)
    channel = grpcx.insecure_channel(target)
    try:
        call: Any = channel.unary_unary("/test.Balance/Who")
        await channel.channel_ready()
        before = counts(replicas)
        for _ in range(30):
            await call(b"", timeout=5)
        spread = {host: replicas[host].calls - before[host] for host in HOSTS}
        assert all(n > 0 for n in spread.values()), spread  # pick_first would put all 30 on one replica
    finally:
        await channel.close()
