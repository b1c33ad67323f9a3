"""The results table: our figure, LiteLLM's and the ratio for every metric, with the issue's targets.

:func:`rows` turns a results document (what ``run.py`` writes to ``latest.json``) into table rows;
:func:`markdown` renders them with the machine and the settings they were measured with.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the lock; only the memory total is read

__all__ = ["Row", "machine_info", "markdown", "rows"]

MB = 1024 * 1024
NA = "—"
TIMES = "\u00d7"  # the multiplication sign, spelled out for the linter


@dataclass(frozen=True)
class Row:
    metric: str
    ours: str
    theirs: str
    ratio: str
    target: str


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, OS and Python of this machine, and the commit being measured."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    # results are rewritten by every run: a changed results file does not make the measured code dirty
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"],
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    return {
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor() or "unknown",
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "commit": commit.stdout.strip() + ("+dirty" if dirty else ""),
        # other work on the machine skews every figure: record how busy it was
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return NA
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return NA
    ratio = ours / theirs
    return f"<0.01{TIMES}" if 0 <= ratio < 0.01 else f"{ratio:.2f}{TIMES}"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else (" ✅" if ok else " ❌")


def _scenario(doc: dict[str, Any], target: str, key: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = doc.get("targets", {}).get(target, {}).get("scenarios", {}).get(key)
    return found


def _added(doc: dict[str, Any], sc: dict[str, Any] | None, baseline: str, field: str, q: str) -> float | None:
    if not sc or not sc.get("supported"):
        return None
    mine = sc["fixed_rate"][field].get(q)
    base = doc["baseline"][baseline][field].get(q)
    return None if mine is None or base is None else mine - base


def _cpu(sc: dict[str, Any] | None, phase: str, group: str) -> float | None:
    """CPU µs per request of one process group in one phase (None when not measured)."""
    if not sc or not sc.get("supported"):
        return None
    value = sc[phase].get("cpu_us_per_request", {}).get(group)
    return float(value) if value else None


def _host_note(doc: dict[str, Any]) -> str:
    """One sentence on what a wake after idle cost on this host (bench/host.py), before and after the gateways."""
    probes = [doc.get("host", {}).get(k) for k in ("before", "after")]
    found = [p for p in probes if p]
    if not found:
        return ""
    idle = found[0]["idle_ms"]

    def both(pick: Any, unit: str) -> str:
        return " / ".join(f"{pick(p):,.1f}" for p in found) + unit

    when = " / ".join(k for k, p in zip(("before", "after"), probes, strict=True) if p)
    return (
        f"This host (`bench/host.py`, {when} the gateways): after {idle:g} ms idle, a fixed piece of Python work "
        f"took {both(lambda p: p['work_ratio'], TIMES)} its back-to-back time, and a loopback round trip between "
        f"two processes {both(lambda p: p['round_trip_us']['after_idle'], ' µs')} "
        f"({both(lambda p: p['round_trip_us']['back_to_back'], ' µs')} back to back). At {doc['settings']['rate']:g} "
        "req/s every hop of a request starts in a process idle about that long, so the latency and CPU rows at that "
        "rate move with these figures from host to host."
    )


def _cell(value: float | None, sc: dict[str, Any] | None, phase: str, digits: int = 2) -> str:
    """A figure, or why there is none; flags phases where over 1% of the requests failed or were not sent."""
    if sc is None:
        return NA
    if not sc.get("supported"):
        return "not supported yet" if "not supported" in sc.get("note", "") else "failed"
    result = sc[phase]
    notes = []
    served, offered = result.get("served_rps", 0.0), result.get("offered_rps", 0.0)
    if phase == "fixed_rate" and served and served < 0.9 * offered:
        # the rate is over this gateway's capacity: the figure is mostly time spent queueing
        notes.append(f"overloaded: {served:.0f} of {offered:.0f} req/s served")
    bad = result["errors"] + result.get("dropped", 0)
    if bad > 0.01 * max(1, result["completed"] + bad):
        notes.append(f"{bad} failed")
    return _fmt(value, digits) + (f" ({', '.join(notes)})" if notes else "")


def rows(doc: dict[str, Any]) -> list[Row]:
    """Every metric for every scenario in ``doc``, then memory; ratios are ours ÷ LiteLLM's."""
    settings = doc["settings"]
    out: list[Row] = []
    throughput_targets = {"chat": 10.0, "anthropic": 5.0}
    for scenario in doc["scenarios"]:
        key, title, baseline = scenario["key"], scenario["title"], scenario["baseline"]
        ours, theirs = _scenario(doc, "omniroute", key), _scenario(doc, "litellm", key)

        def rps(sc: dict[str, Any] | None) -> float | None:
            return sc["saturation"]["rps"] if sc and sc.get("supported") else None

        goal = throughput_targets.get(key)
        r_ours, r_theirs = rps(ours), rps(theirs)
        met = None if goal is None or r_ours is None or not r_theirs else r_ours / r_theirs >= goal
        out.append(Row(f"{title}: throughput, req/s at {settings['concurrency']} connections",
                       _cell(r_ours, ours, "saturation", 0), _cell(r_theirs, theirs, "saturation", 0),
                       _ratio(r_ours, r_theirs), (f"≥ {goal:.0f}{TIMES}" if goal else "") + _verdict(met)))  # fmt: skip
        for q, limit in (("p50", 1.0), ("p99", 5.0)):
            a, b = _added(doc, ours, baseline, "latency_ms", q), _added(doc, theirs, baseline, "latency_ms", q)
            ok = None if a is None else a < limit
            out.append(Row(f"{title}: added latency {q} at {settings['rate']:.0f} req/s, ms",
                           _cell(a, ours, "fixed_rate"), _cell(b, theirs, "fixed_rate"), _ratio(a, b),
                           f"< {limit:.0f} ms" + _verdict(ok)))  # fmt: skip
        if key == "stream":
            for q in ("p50", "p99"):
                a, b = _added(doc, ours, baseline, "ttfb_ms", q), _added(doc, theirs, baseline, "ttfb_ms", q)
                ok = None if a is None else a < 2.0
                out.append(Row(f"{title}: time-to-first-byte overhead {q}, ms", _cell(a, ours, "fixed_rate"),
                               _cell(b, theirs, "fixed_rate"), _ratio(a, b), "< 2 ms" + _verdict(ok)))  # fmt: skip
        if key == "chat":
            for phase, load in (("saturation", f"{settings['concurrency']} connections"),
                                ("fixed_rate", f"{settings['rate']:.0f} req/s")):  # fmt: skip
                a, b = _cpu(ours, phase, "gateway"), _cpu(theirs, phase, "gateway")
                out.append(Row(f"{title}: CPU per request, all gateway processes, at {load}, µs",
                               _cell(a, ours, phase, 0), _cell(b, theirs, phase, 0), _ratio(a, b), ""))  # fmt: skip
    mem = {t: doc.get("targets", {}).get(t, {}) for t in ("omniroute", "litellm")}
    for label, field in (("idle, after start", "rss_idle"), ("peak under load", "rss_peak")):
        a = mem["omniroute"].get(field)
        b = mem["litellm"].get(field)
        a_mb = a / MB if a else None
        b_mb = b / MB if b else None
        ok = None if a_mb is None or b_mb is None or field != "rss_peak" else a_mb <= b_mb
        out.append(Row(f"memory (RSS of all gateway processes), {label}, MB", _fmt(a_mb, 0), _fmt(b_mb, 0),
                       _ratio(a_mb, b_mb), (f"≤ 1{TIMES}" if field == "rss_peak" else "") + _verdict(ok)))  # fmt: skip
    return out


def markdown(doc: dict[str, Any]) -> str:
    """The table with its context: machine, settings, direct-to-mock ceilings and per-scenario notes."""
    m, s = doc["machine"], doc["settings"]
    lines = [
        f"Measured {doc['finished_at']} on {m['cores']} cores ({m['cpu_model']}), {m['memory_gb']} GB, {m['os']}, "
        f"Python {m['python']}; OmniRoute at {m['commit']}, LiteLLM {doc['litellm_version']} (2 workers, no "
        f"database). Load: `{s['concurrency']}` connections for {s['duration']:g} s (throughput) and an open-loop "
        f"{s['rate']:g} req/s for {s['duration']:g} s (latency), after {s['warmup']:g} s of warm-up each and "
        f"{s.get('target_warmup', 0):g} s of discarded load per gateway; mock: "
        f"{s['chunks']} content chunks {s['chunk_delay_ms']:g} ms apart, {s['latency_ms']:g} ms latency. "
        f"Load average (1 min) {m['load_average_at_start'][0]:g} at start, "
        f"{m.get('load_average_at_end', [0])[0]:g} at end (other work on the machine skews every figure).",
        "",
        "| metric | OmniRoute | LiteLLM | ours ÷ LiteLLM | target |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {r.metric} | {r.ours} | {r.theirs} | {r.ratio} | {r.target} |" for r in rows(doc)]
    d, b = doc["direct"], doc["baseline"]
    lines += [
        "",
        f"The mock alone (same load generator): {d['chat_saturation']['rps']:,.0f} req/s plain, "
        f"{d['stream_saturation']['rps']:,.0f} req/s streaming; at {s['rate']:g} req/s p50/p99 "
        f"{b['chat']['latency_ms']['p50']:.2f}/{b['chat']['latency_ms']['p99']:.2f} ms plain, streaming TTFB "
        f"{b['stream']['ttfb_ms']['p50']:.2f}/{b['stream']['ttfb_ms']['p99']:.2f} ms (per percentile, the lower of two "
        "runs: before our suite and after it). Added latency is the gateway's percentile minus the mock's. "
        "Ratios are ours ÷ LiteLLM's: higher is better for throughput, lower for latency and memory.",
    ]
    backing = doc.get("targets", {}).get("omniroute", {}).get("backing_rss_peak")
    if backing:
        lines.append(f"Our memory row counts the five services; the PostgreSQL, Redis and NATS servers they use "
                     f"peaked at {backing / MB:,.0f} MB more (LiteLLM ran without a database).")  # fmt: skip
    chat = _scenario(doc, "omniroute", "chat")
    extra = [_cpu(chat, phase, "backing") for phase in ("saturation", "fixed_rate")]
    if extra[0] is not None and extra[1] is not None:
        lines.append(f"Our CPU rows count the same five services; those servers used {extra[0]:,.0f} µs more per "
                     f"chat request at {s['concurrency']} connections and {extra[1]:,.0f} µs more at "
                     f"{s['rate']:g} req/s.")  # fmt: skip
    if note := _host_note(doc):
        lines += ["", note]
    notes = []
    for target in ("omniroute", "litellm"):
        for key, sc in doc.get("targets", {}).get(target, {}).get("scenarios", {}).items():
            if sc.get("note"):
                notes.append(f"- {target} / {key}: {sc['note']}")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
