"""The benchmark's load generator: HTTP/1.1 keep-alive on raw asyncio protocols, uvloop and httptools.

``python bench/loadgen.py '<spec JSON>'`` runs one load phase against 127.0.0.1 and prints one JSON object (the
:class:`Result` fields) on stdout. The spec (all keys but ``port``, ``path`` and ``body`` optional):

- ``port``, ``path``, ``headers`` (object), ``body`` (string; every ``{n}`` in it becomes a per-request counter,
  so that bodies differ and no cache can answer them, unless ``unique`` is false);
- ``mode``: ``"closed"`` (``concurrency`` connections, each sending its next request when the previous reply
  ends: throughput at saturation) or ``"open"`` (requests sent on a fixed schedule at ``rate`` per second whatever
  the replies do, so a slow server cannot slow the offered load down: latency at a fixed rate);
- ``duration`` and ``warmup`` seconds (warm-up requests are not counted), ``timeout`` per request, and
  ``max_inflight`` (open mode: requests over this many in flight are not sent and are counted as ``dropped``);
- ``cpu_pids``: named groups of root processes (e.g. the gateway's services, its backing servers). Each group's
  trees' CPU time (user + system) over the measured window, divided by the requests completed in it, is that
  group's ``cpu_us_per_request``: what one request costs, which differs between saturation (processes kept busy)
  and a fixed low rate (every request finds them asleep).

Latency is measured from the moment the request's bytes were handed to the socket, to the last byte
(``latency_ms``) and to the first body byte (``ttfb_ms``). In open mode a request is sent when due whatever the
replies do, so a slow server cannot slow the offered load down; ``send_lag_ms`` is how late the client sent it
(the event loop's timers have millisecond resolution, too coarse to measure sub-millisecond overheads from).
Only 127.0.0.1 is ever contacted; the phase ends after ``warmup + duration + timeout`` seconds at most.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import httptools
import psutil  # type: ignore[import-untyped]  # no stubs in the lock
import uvloop

from omniroute_core import jsonx

__all__ = ["Result", "Spec", "cpu_seconds", "process_trees", "run"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Spec:
    port: int
    path: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    unique: bool = True
    mode: str = "closed"
    concurrency: int = 32
    rate: float = 200.0
    duration: float = 8.0
    warmup: float = 1.0
    timeout: float = 30.0
    max_inflight: int = 2000
    cpu_pids: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class Result:
    mode: str
    duration_s: float
    completed: int = 0
    errors: int = 0
    dropped: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    rps: float = 0.0
    offered_rps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    ttfb_ms: dict[str, float] = field(default_factory=dict)
    send_lag_ms: dict[str, float] = field(default_factory=dict)
    served_rps: float = 0.0  # open mode: completions over the time from the first measured send to the last reply
    cpu_us_per_request: dict[str, float] = field(default_factory=dict)  # per cpu_pids group
    first_error: str = ""


class _Reply:
    __slots__ = ("done_at", "first_body_at", "sent_at", "status")

    def __init__(self) -> None:
        self.status = 0
        self.sent_at = 0.0
        self.first_body_at = 0.0
        self.done_at = 0.0


class _Client(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[_Reply] | None = None
        self.reply = _Reply()
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_headers_complete(self) -> None:
        self.reply.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.reply.first_body_at:
            self.reply.first_body_at = time.perf_counter()

    def on_message_complete(self) -> None:
        self.reply.done_at = time.perf_counter()
        if not self.reply.first_body_at:
            self.reply.first_body_at = self.reply.done_at
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(exc or ConnectionResetError("connection closed by the server"))

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and self.keep_alive

    async def send(self, request: bytes) -> _Reply:
        assert self.transport is not None
        self.reply = _Reply()
        self.waiter = asyncio.get_running_loop().create_future()
        self.reply.sent_at = time.perf_counter()
        self.transport.write(request)
        return await self.waiter


class _Requests:
    """Request bytes, each with its own counter in the body when ``unique``."""

    def __init__(self, spec: Spec) -> None:
        self.unique = spec.unique and "{n}" in spec.body
        self.parts = [p.encode() for p in spec.body.split("{n}")] if self.unique else [spec.body.encode()]
        head = f"POST {spec.path} HTTP/1.1\r\nhost: {HOST}:{spec.port}\r\ncontent-type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in spec.headers.items())
        self.head = head.encode()
        self.n = 0

    def next(self) -> bytes:
        self.n += 1
        body = str(self.n).encode().join(self.parts) if self.unique else self.parts[0]
        return self.head + b"content-length: %d\r\n\r\n" % len(body) + body


class _Recorder:
    def __init__(self, spec: Spec, result: Result) -> None:
        self.spec = spec
        self.result = result
        self.latencies: list[float] = []
        self.ttfbs: list[float] = []
        self.lags: list[float] = []
        self.first_due = 0.0
        self.last_done = 0.0

    def ok(self, due: float, reply: _Reply, counted: bool) -> None:
        if not counted:
            return
        key = str(reply.status)
        self.result.statuses[key] = self.result.statuses.get(key, 0) + 1
        if 200 <= reply.status < 300:
            self.result.completed += 1
            self.latencies.append(reply.done_at - reply.sent_at)
            self.ttfbs.append(reply.first_body_at - reply.sent_at)
            self.lags.append(reply.sent_at - due)
            self.first_due = min(self.first_due or due, due)
            self.last_done = max(self.last_done, reply.done_at)
        else:
            self.result.errors += 1

    def failed(self, exc: BaseException, counted: bool) -> None:
        if counted:
            self.result.errors += 1
            self.result.first_error = self.result.first_error or f"{type(exc).__name__}: {exc}"


async def _connect(port: int) -> _Client:
    _, client = await asyncio.get_running_loop().create_connection(_Client, HOST, port)
    return client


async def _closed(spec: Spec, result: Result) -> _Recorder:
    rec, requests = _Recorder(spec, result), _Requests(spec)
    start = time.perf_counter()
    measure_from, end = start + spec.warmup, start + spec.warmup + spec.duration

    async def worker() -> None:
        client: _Client | None = None
        while (now := time.perf_counter()) < end:
            counted = now >= measure_from
            try:
                if client is None or not client.usable:
                    client = await _connect(spec.port)
                reply = await asyncio.wait_for(client.send(requests.next()), spec.timeout)
            except (OSError, TimeoutError, httptools.HttpParserError) as exc:
                rec.failed(exc, counted)
                if client is not None and client.transport is not None:
                    client.transport.close()
                client = None
                await asyncio.sleep(0.01)  # a refusing server must not turn this loop into a busy spin
                continue
            # a request counts when it was sent inside the window and finished before its end
            rec.ok(now, reply, counted and reply.done_at <= end)
        if client is not None and client.transport is not None:
            client.transport.close()

    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    return rec


async def _open(spec: Spec, result: Result) -> _Recorder:
    rec, requests = _Recorder(spec, result), _Requests(spec)
    idle: list[_Client] = []
    inflight: set[asyncio.Task[None]] = set()
    interval = 1.0 / spec.rate
    total = int((spec.warmup + spec.duration) * spec.rate)
    warm = int(spec.warmup * spec.rate)

    async def one(due: float, counted: bool) -> None:
        client = idle.pop() if idle else None
        try:
            if client is None or not client.usable:
                client = await _connect(spec.port)
            reply = await asyncio.wait_for(client.send(requests.next()), spec.timeout)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            rec.failed(exc, counted)
            if client is not None and client.transport is not None:
                client.transport.close()
            return
        rec.ok(due, reply, counted)
        if client.usable:
            idle.append(client)

    start = time.perf_counter()
    for i in range(total):
        due = start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(inflight) >= spec.max_inflight:
            result.dropped += i >= warm
            continue
        task = asyncio.ensure_future(one(due, i >= warm))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    if inflight:
        await asyncio.wait(inflight)
    for client in idle:
        if client.transport is not None:
            client.transport.close()
    result.offered_rps = spec.rate
    return rec


def process_trees(roots: list[int]) -> list[psutil.Process]:
    """``roots`` and all their descendants (roots that are gone are skipped)."""
    procs: list[psutil.Process] = []
    for pid in roots:
        try:
            root = psutil.Process(pid)
            procs += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    return procs


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """CPU seconds (user + system) used so far by ``procs`` (processes gone meanwhile count nothing)."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += float(times.user + times.system)
    return total


class _CpuWindow:
    """CPU seconds used by the process trees under ``roots`` from ``start`` to ``end`` seconds from now (loop time).
    The trees are listed once, before the load starts (a gateway forks its workers at start, not per request)."""

    def __init__(self, roots: list[int], start: float, end: float) -> None:
        self.procs = process_trees(roots)
        self.started: float | None = None
        self.used = 0.0
        loop = asyncio.get_running_loop()
        self._timers = [loop.call_later(start, self._open), loop.call_later(end, self.close)]

    def _open(self) -> None:
        self.started = cpu_seconds(self.procs)

    def close(self) -> None:
        """End the window, once: by its timer or, if the load ended first, right after it."""
        if not self._timers:
            return
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        if self.started is not None:
            self.used = cpu_seconds(self.procs) - self.started


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(sum(ordered) / len(ordered) * 1000, 3),
    }


async def run(spec: Spec) -> Result:
    """Run one phase as ``spec`` says and summarise it."""
    result = Result(mode=spec.mode, duration_s=spec.duration)
    # the measured window of either mode: from the end of the warm-up, for the duration
    end = spec.warmup + spec.duration
    windows = {name: _CpuWindow(pids, spec.warmup, end) for name, pids in spec.cpu_pids.items()}
    rec = await (_closed(spec, result) if spec.mode == "closed" else _open(spec, result))
    for window in windows.values():  # the load may end a hair before its timer (the open mode's last send)
        window.close()
    if result.completed:
        result.cpu_us_per_request = {n: round(w.used / result.completed * 1e6, 1) for n, w in windows.items()}
    result.rps = round(result.completed / spec.duration, 1)
    result.latency_ms = _percentiles(rec.latencies)
    result.ttfb_ms = _percentiles(rec.ttfbs)
    result.send_lag_ms = _percentiles(rec.lags)
    if spec.mode == "open" and rec.last_done > rec.first_due:
        result.served_rps = round(result.completed / (rec.last_done - rec.first_due), 1)
    return result


def main(argv: list[str]) -> None:
    raw: dict[str, Any] = jsonx.loads(argv[1])
    spec = Spec(**raw)
    if spec.mode not in ("closed", "open"):
        raise SystemExit(f"mode must be 'closed' or 'open', not {spec.mode!r}")
    result = uvloop.run(run(spec))
    sys.stdout.write(jsonx.dumps(asdict(result)).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv)
