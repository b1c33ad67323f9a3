"""`make bench`: OmniRoute against LiteLLM, side by side, against the same local mock provider.

Starts the mock provider, measures it alone (the baselines), then our suite (five services plus private
PostgreSQL, Redis and NATS), runs every scenario, stops it, and then does the same with LiteLLM — never both at
once, as the machine has two cores. Writes ``bench/results/latest.json`` and ``latest.md`` and prints the table.
All traffic stays on 127.0.0.1; every phase is bounded in time. Exit status 0, or 1 when a target fails to start.

``python bench/run.py --help`` lists the settings (``make bench ARGS="--duration 4"``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ on sys.path; the modules are imported as `bench.*` from the repo root so
# that `mypy bench` resolves them the same way (as tools/run.py does for tools.runlib).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from bench.measure import SCENARIOS, Load, Sampler, Scenario, baseline, direct_phases, run_scenario, warm_up
from bench.report import machine_info, markdown
from bench.targets import (
    LITELLM_VERSION,
    LiteLLM,
    Mock,
    OmniRoute,
    Target,
    ensure_litellm,
    settle,
    tree_rss,
    tree_rss_by_process,
)
from omniroute_core import jsonx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LITELLM_VENV = ROOT / ".bench" / "litellm-venv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description="OmniRoute vs LiteLLM on a local mock provider.")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per measured phase (default 6)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase (default 1)")
    p.add_argument(
        "--target-warmup",
        type=float,
        default=5.0,
        help="seconds of discarded load on each gateway before its scenarios (default 5)",
    )
    p.add_argument("--concurrency", type=int, default=32, help="connections for throughput (default 32)")
    p.add_argument("--rate", type=float, default=200.0, help="requests/s for the latency phases (default 200)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds (default 5)")
    p.add_argument(
        "--max-inflight",
        type=int,
        default=512,
        help="fixed-rate phases: requests beyond this many in flight are not sent (default 512)",
    )
    p.add_argument("--chunks", type=int, default=10, help="content chunks per mock stream (default 10)")
    p.add_argument("--chunk-delay-ms", type=float, default=1.0, help="mock delay between stream events (default 1)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="mock delay before the first byte (default 0)")
    p.add_argument("--only", choices=("omniroute", "litellm", "both"), default="both")
    p.add_argument("--scenarios", default=",".join(s.key for s in SCENARIOS), help="comma-separated subset")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where latest.json/.md go")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, data) after the run")
    return p.parse_args(argv)


async def measure_target(
    target: Target, mock: Mock, load: Load, scenarios: list[Scenario], target_warmup: float
) -> dict[str, Any]:
    """Start ``target``, run every scenario against it, stop it. Returns its section of the results."""
    started = time.monotonic()
    print(f"bench: starting {target.name}", flush=True)
    try:
        await target.start()
        ready = time.monotonic() - started
        settled = await settle(target.root_pids)
        print(f"bench: {target.name} answered after {ready:.1f}s, idle after {settled:.1f}s more", flush=True)
        warm = await warm_up(target, load, target_warmup) if target_warmup > 0 else {"rps": None}
        section: dict[str, Any] = {
            "ready_s": round(ready, 1),
            "settled_s": round(settled, 1),
            "warm_up_rps": warm["rps"],
            "rss_idle": tree_rss(target.root_pids()),
            "rss_idle_by_process": tree_rss_by_process(target.root_pids()),
            "scenarios": {},
        }
        samplers = [Sampler(target.root_pids), Sampler(target.backing_pids)]
        for scenario in scenarios:
            result = await run_scenario(target, scenario, mock, load, samplers)
            section["scenarios"][scenario.key] = result
            if result["supported"]:
                sat, fixed = result["saturation"], result["fixed_rate"]
                print(f"bench: {target.name} {scenario.key}: {sat['rps']:,.0f} req/s saturated; at {load.rate:g} "
                      f"req/s p50 {fixed['latency_ms'].get('p50')} ms, p99 {fixed['latency_ms'].get('p99')} ms, "
                      f"TTFB p50 {fixed['ttfb_ms'].get('p50')} ms", flush=True)  # fmt: skip
            else:
                print(f"bench: {target.name} {scenario.key}: {result['note']}", flush=True)
        section["rss_peak"] = samplers[0].peak
        if samplers[1].peak:
            section["backing_rss_peak"] = samplers[1].peak
        return section
    finally:
        await asyncio.to_thread(target.stop)


def _merge(sections: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's results from several instances: all scenarios, idle memory of the first, the highest peak."""
    first = sections[0]
    merged: dict[str, Any] = {"rss_idle": first["rss_idle"], "rss_idle_by_process": first["rss_idle_by_process"],
                              "rss_peak": 0, "scenarios": {}, "instances": []}  # fmt: skip
    for section in sections:
        merged["scenarios"].update(section["scenarios"])
        merged["rss_peak"] = max(merged["rss_peak"], section["rss_peak"])
        merged["instances"].append({k: section[k] for k in ("ready_s", "settled_s", "warm_up_rps")})
    return merged


async def host_probe() -> dict[str, Any]:
    """bench/host.py's figures (what a wake after idle costs on this host), from its own process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "host.py"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench/host.py failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    found: dict[str, Any] = jsonx.loads(out)
    return found


async def bench(ns: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    load = Load(ns.duration, ns.warmup, ns.concurrency, ns.rate, ns.timeout, ns.max_inflight)
    wanted = {k.strip() for k in ns.scenarios.split(",") if k.strip()}
    scenarios = [s for s in SCENARIOS if s.key in wanted]
    exe = await asyncio.to_thread(ensure_litellm, LITELLM_VENV) if ns.only != "omniroute" else None
    mock = Mock(workdir, ns.latency_ms, ns.chunks, ns.chunk_delay_ms)
    doc: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "make bench" + (f' ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else ""),
        "machine": machine_info(),
        "litellm_version": LITELLM_VERSION,
        "settings": {
            "duration": ns.duration,
            "warmup": ns.warmup,
            "concurrency": ns.concurrency,
            "rate": ns.rate,
            "timeout": ns.timeout,
            "max_inflight": ns.max_inflight,
            "target_warmup": ns.target_warmup,
            "chunks": ns.chunks,
            "chunk_delay_ms": ns.chunk_delay_ms,
            "latency_ms": ns.latency_ms,
        },
        "scenarios": [{"key": s.key, "title": s.title, "path": s.path, "baseline": s.baseline} for s in scenarios],
        "targets": {},
    }
    load_now = os.getloadavg()[0]
    if load_now > (os.cpu_count() or 1) / 2:
        print(f"bench: warning: load average {load_now:.2f} on {os.cpu_count()} cores before starting; other work "
              "on this machine will skew the figures", flush=True)  # fmt: skip
    print("bench: probing what a wake after idle costs on this host", flush=True)
    doc["host"] = {"before": await host_probe()}
    await mock.start()
    try:
        print("bench: measuring the mock alone", flush=True)
        doc["direct"] = await direct_phases(mock, load)
        direct_runs = [doc["direct"]]
        if ns.only in ("omniroute", "both"):
            doc["targets"]["omniroute"] = await measure_target(
                OmniRoute(workdir, mock), mock, load, scenarios, ns.target_warmup
            )
        # the baseline is the lower of two runs of the mock alone whatever is measured, so that one run's hiccup
        # (a background spike) cannot turn an added latency negative
        print("bench: measuring the mock alone again", flush=True)
        direct_runs.append(await direct_phases(mock, load, saturation=False))
        if exe is not None:
            # LiteLLM ships with its response cache off: only the cache-hit scenario gets an instance with it on
            plain = [s for s in scenarios if not s.needs_cache]
            cached = [s for s in scenarios if s.needs_cache]
            sections = []
            if plain:
                sections.append(await measure_target(LiteLLM(workdir, mock, exe), mock, load, plain, ns.target_warmup))
            if cached:
                lite = LiteLLM(workdir, mock, exe, cache=True)
                sections.append(await measure_target(lite, mock, load, cached, ns.target_warmup))
            doc["targets"]["litellm"] = _merge(sections)
        doc["direct_fixed_rate_runs"] = [{k: run[k] for k in ("chat", "stream")} for run in direct_runs]
        doc["baseline"] = baseline(direct_runs)
    finally:
        await asyncio.to_thread(mock.stop)
    doc["host"]["after"] = await host_probe()
    doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    doc["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return doc


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    # /tmp and not the checkout: PostgreSQL runs as its own user and must be able to traverse the data path
    workdir = Path(tempfile.mkdtemp(prefix="omniroute-bench-"))
    started = time.monotonic()
    try:
        doc = uvloop.run(bench(ns, workdir))
    except (RuntimeError, TimeoutError) as exc:
        print(f"bench: {exc}\nbench: logs are in {workdir}", file=sys.stderr)
        return 1
    doc["wall_seconds"] = round(time.monotonic() - started, 1)
    table = markdown(doc)
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "latest.json").write_bytes(jsonx.dumps(doc) + b"\n")
    (ns.out / "latest.md").write_text(table, encoding="utf-8")
    print("\n" + table)
    print(f"bench: {doc['wall_seconds']:.0f}s; wrote {ns.out / 'latest.json'} and {ns.out / 'latest.md'}")
    if ns.keep:
        print(f"bench: work folder kept at {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
