"""How much this host charges a process for waking up: the figure that fixed-rate latency rows depend on.

At 200 req/s a request arrives every 5 ms and each of our processes sleeps between them, so every hop of every
request starts in a process that was idle. On some hosts (virtual machines whose idle vCPU is halted and handed
to other work) such a wake costs far more than the same work done back to back; the same code then measures
twice the added latency on one host as on another. ``make bench`` runs this probe before and after the gateways
and prints what it found under the table, so that two tables from different hosts can be told apart.

``python bench/host.py [--rounds N] [--idle-ms MS]`` prints one JSON object:

- ``round_trip_us``: one byte to a child process and back over loopback TCP (``TCP_NODELAY``, as the gateway's
  hops are), p50 ``after_idle`` (after ``idle_ms`` of sleep, the interval between requests at 200 req/s) and p50
  ``back_to_back`` (the next one, right after); the two are interleaved, one of each per round;
- ``work_us``: a fixed piece of Python work (decode, rebuild and encode a small chat body, as the hot path does),
  p50 after the same idle time and back to back;
- ``work_ratio``: after_idle ÷ back_to_back of ``work_us``.

Only 127.0.0.1 is used; it runs for about ``2 * rounds * idle_ms`` milliseconds.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from omniroute_core import jsonx

__all__ = ["probe"]

_BODY = (
    b'{"model":"gpt-4o-mini","stream":false,"max_tokens":64,"messages":['
    + b",".join(b'{"role":"user","content":"%s"}' % (b"hello there " * 8) for _ in range(6))
    + b"]}"
)


def _work() -> None:
    """About 50 µs of the kind of work a hop does on a warm core: parse, touch every field, serialize."""
    for _ in range(12):
        doc = jsonx.loads(_BODY)
        doc["messages"] = [{**m, "content": m["content"].strip()} for m in doc["messages"]]
        jsonx.dumps(doc)


def _p50_us(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e6, 1)


def _timed(action: Callable[[], object], rounds: int, idle_s: float) -> dict[str, float]:
    """p50 µs of ``action`` right after ``idle_s`` of sleep and right after itself, interleaved sample by sample so
    that both ways see the same host (its state drifts within seconds)."""
    idle, warm = [], []
    for _ in range(rounds):
        time.sleep(idle_s)
        started = time.perf_counter()
        action()
        between = time.perf_counter()
        action()
        idle.append(between - started)
        warm.append(time.perf_counter() - between)
    return {"back_to_back": _p50_us(warm), "after_idle": _p50_us(idle)}


def _echo_pair() -> tuple[socket.socket, int]:
    """A connected loopback socket whose peer, a forked child, echoes every byte back."""
    listener = socket.create_server(("127.0.0.1", 0))
    near = socket.create_connection(listener.getsockname())
    far, _ = listener.accept()
    listener.close()
    for s in (near, far):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pid = os.fork()
    if pid == 0:  # the echoing child: nothing else, then gone without running the parent's cleanup
        near.close()
        try:
            while data := far.recv(64):
                far.sendall(data)
        finally:
            os._exit(0)
    far.close()
    return near, pid


def probe(rounds: int = 300, idle_ms: float = 5.0) -> dict[str, Any]:
    """Run both measurements (``rounds`` samples each way) and return the figures described in the module doc."""
    idle_s = idle_ms / 1000
    near, child = _echo_pair()
    try:

        def round_trip() -> None:
            near.sendall(b"x")
            if not near.recv(64):
                raise ConnectionError("the echo child went away")

        for _ in range(50):  # both processes' code paths touched once before anything counts
            round_trip()
            _work()
        trips = _timed(round_trip, rounds, idle_s)
        work = _timed(_work, rounds, idle_s)
    finally:
        near.close()
        os.waitpid(child, 0)
    ratio = work["after_idle"] / work["back_to_back"] if work["back_to_back"] else 0.0
    return {"idle_ms": idle_ms, "rounds": rounds, "round_trip_us": trips, "work_us": work,
            "work_ratio": round(ratio, 2)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/host.py", description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=int, default=300, help="samples per measurement and way (default 300)")
    p.add_argument("--idle-ms", type=float, default=5.0, help="sleep before each idle sample (default 5)")
    ns = p.parse_args(argv)
    if ns.rounds < 1 or ns.idle_ms <= 0:
        p.error("--rounds must be at least 1 and --idle-ms positive")
    sys.stdout.write(jsonx.dumps(probe(ns.rounds, ns.idle_ms)).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
