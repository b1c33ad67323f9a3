"""Profile our gateway's hot path under load: py-spy on the edge and executor while the benchmark's load runs.

``uv run python bench/profile.py [--scenario chat] [--seconds 10] [--rate 0]`` starts the mock and our suite
(as ``run.py`` does), drives one scenario (closed loop at ``--concurrency``, or open loop at ``--rate`` req/s
when given) and meanwhile records each named service with ``py-spy record`` (installed into .bench/tools-venv
when missing). Writes ``<scenario>-<service>[-native].txt`` (collapsed stacks, which speedscope and flamegraph.pl read)
under ``.bench/profile/`` and prints the CPU each service spends per request (measured first, without the profiler),
then, per service, the functions with the most samples: on-CPU "self" time and
"inclusive" time (the function or anything it called). Nothing in the services changes.

``--ab NAME=VALUE …`` compares two edge variants instead of profiling: two more edges start alike on the same
executor and backing servers, A with this environment's values of those names and B with the given ones
(e.g. ``EXECUTOR_CLIENT=grpc``), and open-loop phases at ``--rate`` (default 200 req/s) alternate between
them for ``--rounds`` rounds (A B, B A, …), so load from elsewhere on the machine hits both alike
(``--closed``: closed loop at ``--concurrency``, for throughput). It prints each round and the median over
rounds of every latency percentile (ms; the mock's own latency is not subtracted, both include it) and of the
CPU microseconds per request of that edge and of the shared executor, with B ÷ A.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from bench.measure import SCENARIOS, headers_for, probe, run_phase
from bench.targets import Mock, OmniRoute, settle, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
TOOLS_VENV = ROOT / ".bench" / "tools-venv"
OUT = ROOT / ".bench" / "profile"


def ensure_py_spy() -> Path:
    """py-spy in its own venv under .bench (installed with uv only when missing). Returns the executable."""
    exe = TOOLS_VENV / "bin" / "py-spy"
    if exe.exists():
        return exe
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(TOOLS_VENV)], check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(TOOLS_VENV / "bin" / "python"), "py-spy"],
                   check=True)  # fmt: skip
    return exe


def summarize(collapsed: Path, top: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """Total samples, the ``top`` frames by self samples and by inclusive samples, from py-spy's raw output
    (``frame;frame;... count`` per line, outermost first; a frame is ``function (file:line)``)."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return total, own.most_common(top), inclusive.most_common(top)


def _short(frame: str) -> str:
    # "relay (omniroute_edge/relay.py:97)" with the site-packages prefix dropped, line numbers kept
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/services/", "/libs/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


async def cpu_per_request(target: OmniRoute, mock: Mock, spec: dict[str, Any]) -> dict[str, Any]:
    """One load phase without any profiler attached; returns the loadgen result plus ``cpu_us``: CPU
    microseconds per completed request for each service, the backing servers and the mock."""
    groups = {name: [pid] for name, pid in target.service_pids().items()}
    groups |= {b.kind: [b.proc.pid] for b in target.backing}
    groups["mock"] = [mock.proc.pid] if mock.proc else []
    before = {name: tree_cpu_seconds(pids) for name, pids in groups.items()}
    started = time.monotonic()
    result = await run_phase(spec, [])
    wall = time.monotonic() - started
    # the phase's wall time includes the load generator's start and warm-up: count requests over all of it
    requests = max(1.0, result["rps"] * wall)
    result["cpu_us"] = {n: round((tree_cpu_seconds(p) - before[n]) / requests * 1e6) for n, p in groups.items()}
    return result


async def ab(ns: argparse.Namespace, target: OmniRoute, scenario: Any) -> None:
    """Interleaved open-loop phases on the default edge (A) and an edge with ``ns.ab``'s overrides (B)."""
    assert target.suite is not None
    # two new edges started alike (the suite's own edge, which served the setup, measured faster or slower
    # depending on what ran on it before: a position bias), and the order alternates A B, B A, …
    overrides_b = dict(pair.split("=", 1) for pair in ns.ab)
    overrides_a = {name: os.environ[name] for name in overrides_b if name in os.environ}
    port_a = await asyncio.to_thread(target.suite.start_service, "edge", key="edge-a", overrides=overrides_a)
    port_b = await asyncio.to_thread(target.suite.start_service, "edge", key="edge-b", overrides=overrides_b)
    await asyncio.sleep(2)  # the new edges load the config snapshot
    spec: dict[str, Any] = {
        "path": scenario.path, "body": scenario.body, "unique": scenario.unique,
        "headers": headers_for(scenario, target.api_key), "mode": "open" if not ns.closed else "closed",
        "concurrency": ns.concurrency,
        "rate": ns.rate or 200.0, "duration": ns.seconds, "warmup": 1.0, "timeout": 10.0,
    }  # fmt: skip
    keys = ("p50", "p90", "p99")
    rows: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    pids = target.service_pids()
    for round_ in range(ns.rounds):
        order = (("A", port_a, "edge-a"), ("B", port_b, "edge-b"))
        for name, port, edge in order if round_ % 2 == 0 else order[::-1]:
            watched = {"edge": [pids[edge]], "executor": [pids["executor"]]}
            before = {k: tree_cpu_seconds(v) for k, v in watched.items()}
            started = time.monotonic()
            result = await run_phase({**spec, "port": port}, [])
            requests = max(1.0, result["rps"] * (time.monotonic() - started))
            row = {"req/s": float(result["rps"])} if ns.closed else {}
            # CPU per request over the whole phase (start and warm-up included), this edge and the executor
            row |= {f"{k} CPU µs": (tree_cpu_seconds(v) - before[k]) / requests * 1e6 for k, v in watched.items()}
            row |= {f"lat {k}": float(result["latency_ms"].get(k, 0)) for k in keys}
            if scenario.check == "stream":
                row |= {f"ttfb {k}": float(result["ttfb_ms"].get(k, 0)) for k in keys}
            rows[name].append(row)
            print(f"round {round_ + 1} {name}: {result['rps']:,.0f} req/s, "
                  + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)  # fmt: skip
    load = f"{ns.concurrency} connections, closed loop" if ns.closed else f"{spec['rate']} req/s"
    a_desc = " ".join(f"{k}={v}" for k, v in overrides_a.items()) or "the defaults"
    print(f"\nA: {a_desc} (this environment's); B: {' '.join(ns.ab)}; medians over {ns.rounds} rounds at {load}")
    for metric in rows["A"][0]:
        a = statistics.median(r[metric] for r in rows["A"])
        b = statistics.median(r[metric] for r in rows["B"])
        print(f"{metric:>16}: A {a:8.2f}   B {b:8.2f}   B/A {b / a if a else float('nan'):.2f}")


async def profile(ns: argparse.Namespace, workdir: Path, py_spy: Path) -> None:
    scenario = next(s for s in SCENARIOS if s.key == ns.scenario)
    mock = Mock(workdir, 0.0, ns.chunks, ns.chunk_delay_ms)
    await mock.start()
    target = OmniRoute(workdir, mock)
    try:
        await target.start()
        await settle(target.root_pids)
        pids = target.service_pids()
        mode = "open" if ns.rate else "closed"
        ok, note = await probe(target, scenario, mock)
        if not ok:
            raise SystemExit(f"scenario {scenario.key}: {note}")
        if ns.ab:
            await ab(ns, target, scenario)
            return
        spec: dict[str, Any] = {
            "port": target.port, "path": scenario.path, "body": scenario.body, "unique": scenario.unique,
            "headers": headers_for(scenario, target.api_key), "mode": mode, "concurrency": ns.concurrency,
            "rate": ns.rate or 200.0, "duration": ns.seconds, "warmup": 0.5, "timeout": 10.0,
        }  # fmt: skip
        plain = await cpu_per_request(target, mock, spec)
        print(f"without profiler: {plain['rps']:,.0f} req/s ({mode}), latency p50 {plain['latency_ms'].get('p50')} ms,"
              f" p99 {plain['latency_ms'].get('p99')} ms")  # fmt: skip
        print("CPU per request, µs: " + ", ".join(f"{k} {v}" for k, v in plain["cpu_us"].items()))
        OUT.mkdir(parents=True, exist_ok=True)
        suffix = "-native" if ns.native else ""
        spies = []
        for service in ns.services:
            argv = [str(py_spy), "record", "--pid", str(pids[service]), "--duration", str(int(ns.seconds)),
                    "--format", "raw", "--output", str(OUT / f"{scenario.key}-{service}{suffix}.txt")]  # fmt: skip
            # native stacks need the process paused while sampled, which costs more: sample less often
            argv += ["--native", "--rate", "100"] if ns.native else ["--nonblocking", "--rate", "250"]
            argv += ["--idle"] if ns.idle else []
            spies.append(await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                              stderr=asyncio.subprocess.PIPE))  # fmt: skip
        result = await run_phase({**spec, "duration": ns.seconds + 1}, [])
        for spy in spies:
            _, err = await spy.communicate()
            if spy.returncode != 0:
                print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        print(f"under py-spy: {result['rps']:,.0f} req/s")
        for service in ns.services:
            total, own, inclusive = summarize(OUT / f"{scenario.key}-{service}{suffix}.txt", ns.top)
            print(f"\n== {service}: {total} samples ==\n-- self --")
            for frame, n in own:
                print(f"{100 * n / max(1, total):5.1f}%  {frame}")
            print("-- inclusive --")
            for frame, n in inclusive:
                print(f"{100 * n / max(1, total):5.1f}%  {frame}")
    finally:
        await asyncio.to_thread(target.stop)
        await asyncio.to_thread(mock.stop)


def main() -> int:
    p = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--scenario", default="chat", choices=[s.key for s in SCENARIOS])
    p.add_argument("--services", nargs="+", default=["edge", "executor"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rate", type=float, default=0.0, help="open loop at this rate instead of closed loop")
    p.add_argument("--chunks", type=int, default=10)
    p.add_argument("--chunk-delay-ms", type=float, default=1.0)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--idle", action="store_true", help="also sample threads that are waiting")
    p.add_argument("--native", action="store_true", help="include C frames (gRPC core, uvloop, aiohttp's parser)")
    p.add_argument("--ab", nargs="+", metavar="NAME=VALUE", help="compare an edge with these env overrides (B)")
    p.add_argument("--rounds", type=int, default=5, help="A/B rounds")
    p.add_argument("--closed", action="store_true", help="A/B at --concurrency, closed loop (throughput)")
    ns = p.parse_args()
    py_spy = ensure_py_spy() if not ns.ab else Path("py-spy")
    workdir = Path(tempfile.mkdtemp(prefix="omniroute-profile-"))
    try:
        uvloop.run(profile(ns, workdir, py_spy))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
