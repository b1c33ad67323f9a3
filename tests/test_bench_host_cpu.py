"""What the benchmark reports besides latency and throughput: the host's wake cost (bench/host.py) and the CPU a
request costs each process group (bench/loadgen.py's ``cpu_pids``), and how bench/report.py prints both.

No figure's size is asserted beyond being measured at all: how large they are is the host's business, and timed
assertions fail on a busy machine.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the lock
import pytest

REPO = Path(__file__).resolve().parent.parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


host = _load("host")
loadgen = _load("loadgen")
report = _load("report")


# -- bench/host.py -----------------------------------------------------------------------------------------------


def test_host_probe_measures_both_ways_and_reaps_its_child() -> None:
    children_before = {p.pid for p in psutil.Process().children()}
    found = host.probe(rounds=5, idle_ms=1.0)
    assert found["idle_ms"] == 1.0 and found["rounds"] == 5
    for key in ("round_trip_us", "work_us"):
        assert set(found[key]) == {"back_to_back", "after_idle"}
        assert all(value > 0 for value in found[key].values()), found
    assert found["work_ratio"] == pytest.approx(found["work_us"]["after_idle"] / found["work_us"]["back_to_back"], 0.01)
    # the echoing child is gone, not left as a zombie
    assert {p.pid for p in psutil.Process().children()} == children_before


def test_host_script_prints_json_and_refuses_bad_settings() -> None:
    ok = subprocess.run(
        [sys.executable, str(REPO / "bench" / "host.py"), "--rounds", "3", "--idle-ms", "1"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert '"work_ratio"' in ok.stdout
    for bad in (["--rounds", "0"], ["--idle-ms", "0"]):
        refused = subprocess.run([sys.executable, str(REPO / "bench" / "host.py"), *bad],
                                 capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
        assert refused.returncode == 2
        assert "--rounds must be at least 1" in refused.stderr


# -- bench/loadgen.py: CPU per request -----------------------------------------------------------------------------

_SERVER = textwrap.dedent(
    """
    import asyncio, sys

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data):
            self.buffer += data
            while b"\\r\\n\\r\\n" in self.buffer:
                head, rest = self.buffer.split(b"\\r\\n\\r\\n", 1)
                length = next(int(line.split(b":")[1]) for line in head.split(b"\\r\\n")
                              if line.lower().startswith(b"content-length"))
                if len(rest) < length:
                    return
                self.buffer = rest[length:]
                sum(range(20000))  # some CPU per request, so that the figure cannot round to nothing
                self.transport.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")

    async def main():
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())
    """
)


@pytest.fixture
def server() -> Any:
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield proc.pid, port
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_loadgen_counts_cpu_per_request_for_each_group(server: tuple[int, int], mode: str) -> None:
    pid, port = server
    spec = loadgen.Spec(port=port, path="/v1/chat/completions", body='{"n":{n}}', mode=mode, concurrency=2,
                        rate=200.0, duration=0.6, warmup=0.2, timeout=5.0,
                        cpu_pids={"server": [pid], "gone": [2**22 + 1]})  # fmt: skip
    result = await loadgen.run(spec)
    assert result.completed > 0 and result.errors == 0, result
    assert result.cpu_us_per_request["server"] > 0
    # a process that does not exist costs nothing, and does not break the others' figures
    assert result.cpu_us_per_request["gone"] == 0


async def test_loadgen_without_cpu_pids_reports_no_cpu(server: tuple[int, int]) -> None:
    _, port = server
    spec = loadgen.Spec(port=port, path="/", body="{}", duration=0.3, warmup=0.1, concurrency=1, timeout=5.0)
    result = await loadgen.run(spec)
    assert result.completed > 0
    assert result.cpu_us_per_request == {}


# -- bench/report.py -----------------------------------------------------------------------------------------------

X = report.TIMES
_PROBE = {
    "idle_ms": 5.0,
    "rounds": 300,
    "round_trip_us": {"back_to_back": 20.0, "after_idle": 80.0},
    "work_us": {"back_to_back": 40.0, "after_idle": 80.0},
    "work_ratio": 2.0,
}


def _phase(rps: float, p50: float, cpu: dict[str, float] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"rps": rps, "completed": 1000, "errors": 0, "served_rps": 200.0, "offered_rps": 200.0}
    out |= {"latency_ms": {"p50": p50, "p99": 2 * p50}, "ttfb_ms": {"p50": p50, "p99": 2 * p50}}
    return out | ({"cpu_us_per_request": cpu} if cpu is not None else {})


def _target(saturation: dict[str, Any], fixed_rate: dict[str, Any]) -> dict[str, Any]:
    chat = {"supported": True, "note": "", "saturation": saturation, "fixed_rate": fixed_rate}
    return {"rss_idle": 1, "rss_peak": 2, "scenarios": {"chat": chat}}


def _doc(host_probes: dict[str, Any], with_cpu: bool = True) -> dict[str, Any]:
    def cpu(gateway: float, backing: float) -> dict[str, float] | None:
        return {"gateway": gateway, "backing": backing} if with_cpu else None

    ours = _target(_phase(5000, 1.0, cpu(150, 40)), _phase(200, 1.2, cpu(900, 120)))
    theirs = _target(_phase(150, 90, cpu(6000, 0)), _phase(200, 80, cpu(9000, 0)))
    machine = {"cores": 2, "cpu_model": "test", "memory_gb": 1, "os": "linux", "python": "3.11", "commit": "abc",
               "load_average_at_start": [0.1], "load_average_at_end": [0.2]}  # fmt: skip
    settings = {"concurrency": 32, "rate": 200.0, "duration": 6, "warmup": 1, "target_warmup": 5, "chunks": 10,
                "chunk_delay_ms": 1, "latency_ms": 0}  # fmt: skip
    baseline = {"chat": {"latency_ms": {"p50": 0.2, "p99": 0.4}, "ttfb_ms": {}},
                "stream": {"latency_ms": {}, "ttfb_ms": {"p50": 0.2, "p99": 0.4}}}  # fmt: skip
    return {
        "finished_at": "2026-12-04T19:00:00+00:00",
        "machine": machine,
        "litellm_version": "1.106.2",
        "settings": settings,
        "scenarios": [{"key": "chat", "title": "chat", "path": "/v1/chat/completions", "baseline": "chat"}],
        "targets": {"omniroute": ours, "litellm": theirs},
        "direct": {"chat_saturation": {"rps": 50000}, "stream_saturation": {"rps": 3000}},
        "baseline": baseline,
        "host": host_probes,
    }


def test_report_has_cpu_rows_with_ratios_and_the_backing_servers_apart() -> None:
    doc = _doc({"before": _PROBE, "after": {**_PROBE, "work_ratio": 3.5}})
    rows = {r.metric: r for r in report.rows(doc)}
    sat = rows["chat: CPU per request, all gateway processes, at 32 connections, µs"]
    fixed = rows["chat: CPU per request, all gateway processes, at 200 req/s, µs"]
    assert (sat.ours, sat.theirs, sat.ratio) == ("150", "6,000", f"0.03{X}")
    assert (fixed.ours, fixed.theirs, fixed.ratio) == ("900", "9,000", f"0.10{X}")
    text = report.markdown(doc)
    assert "those servers used 40 µs more per chat request at 32 connections and 120 µs more at 200 req/s" in text
    assert f"after 5 ms idle, a fixed piece of Python work took 2.0 / 3.5{X} its back-to-back time" in text
    assert "two processes 80.0 / 80.0 µs (20.0 / 20.0 µs back to back)" in text
    assert "before / after the gateways" in text


def test_report_without_cpu_or_host_figures_says_nothing_about_them() -> None:
    doc = _doc({}, with_cpu=False)
    rows = {r.metric: r for r in report.rows(doc)}
    cpu = rows["chat: CPU per request, all gateway processes, at 200 req/s, µs"]
    assert (cpu.ours, cpu.theirs, cpu.ratio) == ("—", "—", "—")
    text = report.markdown(doc)
    assert "This host" not in text and "those servers used" not in text
    # one probe only (the run stopped before the second): that one is named
    assert "(`bench/host.py`, before the gateways)" in report.markdown(_doc({"before": _PROBE}))
