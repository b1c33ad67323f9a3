"""Where a gRPC hop's latency goes on this machine: one unary echo between two processes, many ways.

``uv run python bench/grpc_latency.py`` starts one echo server per variant (its own process, its own
environment), then runs the client of every variant in turn, ``--rounds`` times interleaved (A B C … A B C …),
so a background spike on the shared machine hits every variant alike. Each client makes ``--calls`` sequential
calls of a ``--size``-byte message with ``--gap-ms`` of idle time between them (the fixed-rate benchmark's
situation: the processes sleep between requests), after a warm-up. Reported per variant: the median over rounds
of the p50 and p99 call latency, that p50 as a multiple of the raw TCP echo's, the CPU time each side
spends per call (client: its own process time; server: /proc/<pid>/stat over the round) and how often per
call each side's threads went to sleep and had to be woken (voluntary context switches of all threads, from
/proc/<pid>/task/*/status): on a VM an idle thread's wake-up is the expensive part of a hop.

Variants (``--variants`` picks some):
  raw            asyncio TCP echo (uvloop), 5-byte length prefix: the floor for two processes on loopback
  aio            grpc.aio client and server, default settings (what the services use, with grpcx's options)
  aio-tuned      grpc.aio with latency-leaning channel args (optimization_target=latency, no BDP probe,
                 minimal stack, small write buffer)
  aio-no-ee      grpc.aio with the legacy iomgr instead of the EventEngine (GRPC_EXPERIMENTS)
  aio-poll       grpc.aio with GRPC_POLL_STRATEGY=poll
  sync           the synchronous grpc client (in the calling thread) against a synchronous grpc server
  mini           pure asyncio: a hand-rolled HTTP/2 framing for exactly this call (HPACK through the ``hpack``
                 package, as a stock peer's headers need), both sides, speaking real gRPC
  aio>mini       a stock grpc.aio client against the mini server (interoperability, and the server's share)
  mini>aio       the mini client against a stock grpc.aio server (the client's share)
  h2             pure asyncio with the ``h2`` package (what grpclib is built on), both sides
  chan>aio       omniroute_core.grpc_h2.H2Channel (the edge's client) against a stock grpc.aio server (round 2)
  chan>srv       H2Channel against omniroute_core.grpc_h2.H2Server (the executor's server since round 3): the hop
                 as the services run it
  aio>srv        a stock grpc.aio client against H2Server (the server's share)
  bidi:…         the same pairs (aio, chan>aio, chan>srv, aio>srv), each call a bidirectional one: write one
                 message, read its echo, done_writing(), read the end (the translator's TranslateStream, shortest);
                 not in the default run

The mini implementation here is a measuring device, not production code (``chan`` and ``srv`` are): it handles
one connection's unary calls, SETTINGS/PING/WINDOW_UPDATE and trailers, and skips what a real server must also do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VARIANTS: dict[str, tuple[str, str, dict[str, str]]] = {
    # name: (server kind, client kind, environment of both processes)
    "raw": ("raw", "raw", {}),
    "aio": ("aio", "aio", {}),
    "aio-tuned": ("aio-tuned", "aio-tuned", {}),
    "aio-no-ee": (
        "aio",
        "aio",
        {"GRPC_EXPERIMENTS": "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints"},
    ),
    "aio-poll": ("aio", "aio", {"GRPC_POLL_STRATEGY": "poll"}),
    "sync": ("sync", "sync", {}),
    "mini": ("mini", "mini", {}),
    "aio>mini": ("mini", "aio", {}),
    "mini>aio": ("aio", "mini", {}),
    "h2": ("h2", "h2", {}),
    "chan>aio": ("aio", "chan", {}),
    "chan>srv": ("srv", "chan", {}),
    "aio>srv": ("srv", "aio", {}),
    "bidi:aio": ("aio", "aio-bidi", {}),
    "bidi:chan>aio": ("aio", "chan-bidi", {}),
    "bidi:chan>srv": ("srv", "chan-bidi", {}),
    "bidi:aio>srv": ("srv", "aio-bidi", {}),
}
METHOD = "/bench.Echo/Echo"
BIDI_METHOD = "/bench.Echo/EchoStream"
CORE = str(Path(__file__).resolve().parent.parent / "libs" / "core")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def grpc_options(kind: str) -> list[tuple[str, Any]]:
    sys.path.insert(0, CORE)
    from omniroute_core.grpcx import CHANNEL_OPTIONS

    options = list(CHANNEL_OPTIONS)
    if kind == "aio-tuned":
        options += [
            ("grpc.optimization_target", "latency"),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.minimal_stack", 1),
            ("grpc.http2.write_buffer_size", 0),
            ("grpc.enable_retries", 0),
        ]
    return options


# -- servers ---------------------------------------------------------------------------------------------------


async def serve_raw(port: int) -> None:
    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while len(self.buf) >= 5:
                size = struct.unpack_from(">xI", self.buf)[0]
                if len(self.buf) < 5 + size:
                    return
                self.transport.write(self.buf[: 5 + size])
                self.buf = self.buf[5 + size :]

    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port)
    await server.serve_forever()


def echo_handlers() -> Any:
    """The echo service: ``Echo`` (unary) and ``EchoStream`` (bidirectional, each request echoed)."""
    import grpc

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    async def echo_stream(requests: Any, context: Any) -> Any:
        async for request in requests:
            yield request

    methods = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "EchoStream": grpc.stream_stream_rpc_method_handler(echo_stream),
    }
    return grpc.method_handlers_generic_handler("bench.Echo", methods)


async def serve_aio(port: int, kind: str) -> None:
    import grpc

    server = grpc.aio.server(options=grpc_options(kind))
    handler = echo_handlers()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def serve_h2server(port: int) -> None:

    sys.path.insert(0, CORE)
    from omniroute_core.grpc_h2 import H2Server
    from omniroute_core.grpcx import MAX_MESSAGE, restore_request_id

    handler = echo_handlers()
    server = H2Server(max_receive=MAX_MESSAGE, on_call=restore_request_id)  # as grpcx.Server(kind="h2") builds it
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def serve_sync(port: int) -> None:
    from concurrent import futures

    import grpc

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(4), options=grpc_options("sync"))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + struct.pack(">I", stream) + payload


def literal(name: bytes, value: bytes) -> bytes:
    """An HPACK literal header field without indexing, new name, no Huffman (lengths < 127)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes((len(name),)) + name + bytes((len(value),)) + value


class MiniH2(asyncio.Protocol):
    """The frame loop both mini sides share: preface/SETTINGS/PING/WINDOW_UPDATE handling and frame parsing.
    Subclasses get ``on_headers(stream, block, end)`` and ``on_data(stream, data, end)``."""

    client = False

    def __init__(self) -> None:
        import hpack

        self.decoder = hpack.Decoder()
        self.buf = b""
        self.seen_preface = self.client
        self.received = 0  # connection-level bytes since our last WINDOW_UPDATE
        self.pending: dict[int, bytes] = {}  # header blocks waiting for CONTINUATION

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        # a large connection window so DATA never waits on us; SETTINGS: a large stream window too
        settings = frame(4, 0, 0, struct.pack(">HI", 4, 1 << 30))
        out = (PREFACE if self.client else b"") + settings + frame(8, 0, 0, struct.pack(">I", (1 << 30) - 65535))
        transport.write(out)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.seen_preface:
            if len(buf) < len(PREFACE):
                self.buf = buf
                return
            assert buf.startswith(PREFACE)
            buf = buf[len(PREFACE) :]
            self.seen_preface = True
        pos, out = 0, []
        while len(buf) - pos >= 9:
            size = int.from_bytes(buf[pos : pos + 3], "big")
            if len(buf) - pos < 9 + size:
                break
            kind, flags = buf[pos + 3], buf[pos + 4]
            stream = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
            payload = buf[pos + 9 : pos + 9 + size]
            pos += 9 + size
            if kind == 0:  # DATA
                self.received += size
                if flags & 0x8:
                    payload = payload[1 : len(payload) - payload[0]]
                out += self.on_data(stream, payload, bool(flags & 0x1))
            elif kind in (1, 9):  # HEADERS, CONTINUATION
                if kind == 1:
                    if flags & 0x8:
                        payload = payload[1 : len(payload) - payload[0]]
                    if flags & 0x20:
                        payload = payload[5:]
                    self.pending[stream] = b""
                    self.pending_end = bool(flags & 0x1)
                block = self.pending[stream] + payload
                if flags & 0x4:
                    del self.pending[stream]
                    out += self.on_headers(stream, self.decoder.decode(block, raw=True), self.pending_end)
                else:
                    self.pending[stream] = block
            elif kind == 4 and not flags & 0x1:  # SETTINGS: acknowledge (our sends stay within the defaults)
                out.append(frame(4, 0x1, 0))
            elif kind == 6 and not flags & 0x1:  # PING
                out.append(frame(6, 0x1, 0, payload))
        if self.received > 1 << 29:
            out.append(frame(8, 0, 0, struct.pack(">I", self.received)))
            self.received = 0
        self.buf = buf[pos:]
        if out:
            self.transport.write(b"".join(out))

    def on_headers(self, stream: int, headers: list[tuple[bytes, bytes]], end: bool) -> list[bytes]:
        raise NotImplementedError

    def on_data(self, stream: int, data: bytes, end: bool) -> list[bytes]:
        raise NotImplementedError


RESPONSE_HEADERS = b"\x88" + literal(b"content-type", b"application/grpc")  # :status 200 is static index 8
TRAILERS_OK = literal(b"grpc-status", b"0")


class MiniServer(MiniH2):
    def __init__(self) -> None:
        super().__init__()
        self.bodies: dict[int, bytes] = {}
        self.paths: dict[int, bytes] = {}

    def on_headers(self, stream: int, headers: list[tuple[bytes, bytes]], end: bool) -> list[bytes]:
        self.paths[stream] = dict(headers).get(b":path", b"")
        self.bodies[stream] = b""
        return self._reply(stream) if end else []

    def on_data(self, stream: int, data: bytes, end: bool) -> list[bytes]:
        self.bodies[stream] += data
        return self._reply(stream) if end else []

    def _reply(self, stream: int) -> list[bytes]:
        body = self.bodies.pop(stream)
        if self.paths.pop(stream) != METHOD.encode():
            return [frame(1, 0x5, stream, RESPONSE_HEADERS + literal(b"grpc-status", b"12"))]
        # the request message is echoed, 5-byte gRPC prefix included
        return [frame(1, 0x4, stream, RESPONSE_HEADERS), frame(0, 0, stream, body), frame(1, 0x5, stream, TRAILERS_OK)]


async def serve_protocol(port: int, factory: Callable[[], asyncio.Protocol]) -> None:
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", port)
    await server.serve_forever()


def h2_protocol(client: bool) -> Any:
    import h2.config
    import h2.connection
    import h2.events

    class H2(asyncio.Protocol):
        def __init__(self) -> None:
            config = h2.config.H2Configuration(client_side=client, header_encoding=None)
            self.conn = h2.connection.H2Connection(config)
            self.bodies: dict[int, bytes] = {}
            self.waiters: dict[int, asyncio.Future[bytes]] = {}

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.conn.initiate_connection()
            transport.write(self.conn.data_to_send())

        def data_received(self, data: bytes) -> None:
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    self.bodies[event.stream_id] = self.bodies.get(event.stream_id, b"") + event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    body = self.bodies.pop(event.stream_id, b"")
                    if client:
                        self.waiters.pop(event.stream_id).set_result(body)
                    else:
                        sid = event.stream_id
                        self.conn.send_headers(sid, [(b":status", b"200"), (b"content-type", b"application/grpc")])
                        self.conn.send_data(sid, body)
                        self.conn.send_headers(sid, [(b"grpc-status", b"0")], end_stream=True)
            out = self.conn.data_to_send()
            if out:
                self.transport.write(out)

        async def call(self, message: bytes) -> bytes:
            sid = self.conn.get_next_available_stream_id()
            headers = [
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", METHOD.encode()),
                (b":authority", b"bench"),
                (b"content-type", b"application/grpc"),
                (b"te", b"trailers"),
            ]
            self.conn.send_headers(sid, headers)
            self.conn.send_data(sid, struct.pack(">?I", False, len(message)) + message, end_stream=True)
            waiter = asyncio.get_running_loop().create_future()
            self.waiters[sid] = waiter
            self.transport.write(self.conn.data_to_send())
            return (await waiter)[5:]

    return H2


def run_server(kind: str, port: int) -> None:
    import uvloop

    if kind == "sync":
        serve_sync(port)
    elif kind == "raw":
        uvloop.run(serve_raw(port))
    elif kind.startswith("aio"):
        uvloop.run(serve_aio(port, kind))
    elif kind == "mini":
        uvloop.run(serve_protocol(port, MiniServer))
    elif kind == "h2":
        uvloop.run(serve_protocol(port, h2_protocol(client=False)))
    elif kind == "srv":
        uvloop.run(serve_h2server(port))
    else:
        raise SystemExit(f"unknown server {kind}")


# -- clients ---------------------------------------------------------------------------------------------------


class MiniClient(MiniH2):
    client = True

    def __init__(self) -> None:
        super().__init__()
        self.next_stream = 1
        self.waiters: dict[int, asyncio.Future[bytes]] = {}
        self.bodies: dict[int, bytes] = {}
        # the request's fixed headers: :method POST (static 3), :scheme http (static 6), then literals
        fields = ((b":path", METHOD.encode()), (b":authority", b"bench"),
                  (b"content-type", b"application/grpc"), (b"te", b"trailers"))  # fmt: skip
        self.fixed = b"\x83\x86" + b"".join(literal(n, v) for n, v in fields)

    def call(self, message: bytes, timeout_ms: int = 600_000) -> asyncio.Future[bytes]:
        stream, self.next_stream = self.next_stream, self.next_stream + 2
        block = self.fixed + literal(b"grpc-timeout", b"%dm" % timeout_ms)
        body = struct.pack(">?I", False, len(message)) + message
        self.transport.write(frame(1, 0x4, stream, block) + frame(0, 0x1, stream, body))
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiters[stream] = waiter
        self.bodies[stream] = b""
        return waiter

    def on_headers(self, stream: int, headers: list[tuple[bytes, bytes]], end: bool) -> list[bytes]:
        if end:  # trailers (or a trailers-only reply)
            status = dict(headers).get(b"grpc-status", b"2")
            waiter = self.waiters.pop(stream)
            body = self.bodies.pop(stream)
            if status == b"0":
                waiter.set_result(body[5:])
            else:
                waiter.set_exception(RuntimeError(f"grpc-status {status.decode()}"))
        return []

    def on_data(self, stream: int, data: bytes, end: bool) -> list[bytes]:
        self.bodies[stream] += data
        return []


async def client_calls(kind: str, port: int, message: bytes, calls: int, gap_s: float) -> list[float]:
    """Latencies (seconds) of ``calls`` sequential calls after a warm-up."""
    loop = asyncio.get_running_loop()
    call: Callable[[], Any]
    if kind == "raw":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        framed = struct.pack(">?I", False, len(message)) + message

        async def call() -> None:
            writer.write(framed)
            await reader.readexactly(len(framed))

    elif kind.endswith("-bidi"):
        bidi = bidi_call(kind, port, message)

        async def call() -> None:
            await bidi()

    elif kind.startswith("aio"):
        import grpc

        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=grpc_options(kind))
        method = channel.unary_unary(METHOD)

        async def call() -> None:
            await method(message, timeout=600, metadata=(("x-request-id", "0" * 32),))

    elif kind == "chan":
        sys.path.insert(0, CORE)
        from omniroute_core.grpc_h2 import H2Channel

        h2_channel = H2Channel(f"127.0.0.1:{port}", max_message=64 * 1024 * 1024)
        h2_method = h2_channel.unary_unary(METHOD)

        async def call() -> None:
            await h2_method(message, timeout=600, metadata=(("x-request-id", "0" * 32),))

    elif kind in ("mini", "h2"):
        factory: Any = MiniClient if kind == "mini" else h2_protocol(client=True)
        _, proto = await loop.create_connection(factory, "127.0.0.1", port)

        async def call() -> None:
            reply = await proto.call(message)
            assert reply[-len(message) :] == message

    else:
        raise SystemExit(f"unknown client {kind}")
    for _ in range(200):
        await call()
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
        if gap_s:
            await asyncio.sleep(gap_s)
    return out


def bidi_call(kind: str, port: int, message: bytes) -> Callable[[], Any]:
    """One short bidirectional call on grpc.aio's channel (``aio-bidi``) or H2Channel (``chan-bidi``)."""
    import grpc

    sys.path.insert(0, CORE)
    from omniroute_core.grpc_h2 import H2Channel

    if kind == "chan-bidi":
        channel: Any = H2Channel(f"127.0.0.1:{port}", max_message=64 * 1024 * 1024)
    else:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=grpc_options(kind))
    method = channel.stream_stream(BIDI_METHOD)

    async def call() -> None:
        stream = method(timeout=600, metadata=(("x-request-id", "0" * 32),))
        await stream.write(message)
        assert await stream.read() == message
        await stream.done_writing()
        assert await stream.read() is grpc.aio.EOF

    return call


def sync_calls(port: int, message: bytes, calls: int, gap_s: float) -> list[float]:
    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=grpc_options("sync"))
    method = channel.unary_unary(METHOD)
    for _ in range(200):
        method(message, timeout=600)
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        method(message, timeout=600)
        out.append(time.perf_counter() - started)
        if gap_s:
            time.sleep(gap_s)
    return out


def wakeups(pid: int | str) -> int:
    """Voluntary context switches of every thread of ``pid`` so far: each is a thread going to sleep, to be
    woken up again (by the network, another thread or a timer)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        total += int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
    return total


def run_client(kind: str, port: int, size: int, calls: int, gap_ms: float) -> None:
    """Prints one line: p50 p99 (µs), CPU µs per call of this process and its thread wake-ups per call."""
    import uvloop

    message = os.urandom(size)
    woken = wakeups("self")
    cpu = time.process_time()
    if kind == "sync":
        lat = sync_calls(port, message, calls, gap_ms / 1000)
    else:
        lat = uvloop.run(client_calls(kind, port, message, calls, gap_ms / 1000))
    cpu_us = (time.process_time() - cpu) / (calls + 200) * 1e6
    woken_per_call = (wakeups("self") - woken) / (calls + 200)
    lat.sort()
    print(f"{lat[len(lat) // 2] * 1e6:.1f} {lat[int(len(lat) * 0.99)] * 1e6:.1f} {cpu_us:.1f} {woken_per_call:.2f}")


# -- the comparison --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start")


def compare(ns: argparse.Namespace) -> None:
    me = [sys.executable, str(Path(__file__).resolve())]
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: dict[str, list[tuple[float, ...]]] = {v: [] for v in ns.variants}
    try:
        for name in ns.variants:
            server_kind, _, env = VARIANTS[name]
            port = free_port()
            proc = subprocess.Popen([*me, "serve", server_kind, str(port)], env={**os.environ, **env})
            servers[name] = (proc, port)
        for _, port in servers.values():
            wait_port(port)
        for round_ in range(ns.rounds):
            for name in ns.variants:
                _, client_kind, env = VARIANTS[name]
                proc, port = servers[name]
                before, woken = cpu_seconds(proc.pid), wakeups(proc.pid)
                argv = [*me, "client", client_kind, str(port), str(ns.size), str(ns.calls), str(ns.gap_ms)]
                env_c = {**os.environ, **env}
                out = subprocess.run(argv, check=False, env=env_c, capture_output=True, text=True, timeout=300)
                if out.returncode != 0:
                    raise SystemExit(f"client of {name} failed:\n{out.stderr[-3000:]}")
                server_cpu = (cpu_seconds(proc.pid) - before) / (ns.calls + 200) * 1e6
                server_woken = (wakeups(proc.pid) - woken) / (ns.calls + 200)
                p50, p99, client_cpu, client_woken = (float(x) for x in out.stdout.split())
                results[name].append((p50, p99, client_cpu, server_cpu, client_woken, server_woken))
            print(f"round {round_ + 1}/{ns.rounds}: " + ", ".join(f"{n} {results[n][-1][0]:.0f}" for n in ns.variants),
                  flush=True)  # fmt: skip
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            proc.wait(10)
    floor = statistics.median(r[0] for r in results[ns.variants[0]])
    print(f"\n{ns.calls} sequential calls of {ns.size} B, {ns.gap_ms} ms apart, {ns.rounds} interleaved rounds; "
          f"medians over rounds; x: p50 over {ns.variants[0]}'s")  # fmt: skip
    print("CPU: µs per call; wake-ups: voluntary context switches per call, all threads (the client's include the")
    print("gap's timer); both sides' CPU and wake-ups include the warm-up calls")
    print(f"{'variant':<11} {'p50 µs':>8} {'p99 µs':>8} {'x':>6} {'CPU client':>11} {'CPU server':>11} "
          f"{'wake-ups client':>16} {'wake-ups server':>16}")  # fmt: skip
    for name in ns.variants:
        p50, p99, ccpu, scpu, cwake, swake = (statistics.median(r[i] for r in results[name]) for i in range(6))
        print(f"{name:<11} {p50:>8.0f} {p99:>8.0f} {p50 / floor:>6.2f} {ccpu:>11.0f} {scpu:>11.0f} "
              f"{cwake:>16.1f} {swake:>16.1f}")  # fmt: skip


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        run_server(sys.argv[2], int(sys.argv[3]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        kind, port, size, calls, gap = sys.argv[2:7]
        run_client(kind, int(port), int(size), int(calls), float(gap))
        return 0
    p = argparse.ArgumentParser(prog="bench/grpc_latency.py", description=__doc__.split("\n\n", 1)[0])
    unary = [name for name in VARIANTS if not name.startswith("bidi:")]
    p.add_argument("--variants", nargs="+", default=unary, choices=list(VARIANTS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--size", type=int, default=300)
    p.add_argument("--gap-ms", type=float, default=2.0)
    compare(p.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
