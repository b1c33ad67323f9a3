"""Scenarios, support probes and load phases, the same for every target.

A phase runs ``loadgen.py`` in its own process (so that the client never shares an interpreter with what it
measures) while the memory of the target's process trees is sampled every 200 ms.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.targets import MODEL, Mock, Target, tree_rss
from omniroute_core import jsonx

__all__ = [
    "SCENARIOS",
    "Load",
    "Sampler",
    "Scenario",
    "baseline",
    "direct_phases",
    "probe",
    "run_phase",
    "run_scenario",
    "warm_up",
]

HERE = Path(__file__).resolve().parent
SAMPLE_EVERY_S = 0.2


def _body(doc: dict[str, Any]) -> str:
    return jsonx.dumps(doc).decode()


_MESSAGES = [{"role": "user", "content": "Say hello to the benchmark ({n})"}]


@dataclass(frozen=True)
class Scenario:
    """One client request shape. ``{n}`` in ``body`` becomes a per-request counter when ``unique``; ``baseline``
    names the direct-to-mock phase whose latency is subtracted (the upstream work the gateway cannot avoid)."""

    key: str
    title: str
    path: str
    body: str
    baseline: str
    unique: bool = True
    anthropic_auth: bool = False
    check: str = "chat"
    needs_cache: bool = False  # run against a gateway configured with a response cache


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("chat", "chat, OpenAI → OpenAI", "/v1/chat/completions",
             _body({"model": MODEL, "messages": _MESSAGES, "max_tokens": 64}), baseline="chat"),
    Scenario("stream", "streaming chat, OpenAI → OpenAI", "/v1/chat/completions",
             _body({"model": MODEL, "messages": _MESSAGES, "max_tokens": 64, "stream": True}),
             baseline="stream", check="stream"),
    Scenario("anthropic", "Anthropic client → OpenAI provider", "/v1/messages",
             _body({"model": MODEL, "messages": _MESSAGES, "max_tokens": 64}),
             baseline="chat", anthropic_auth=True, check="anthropic"),
    # one fixed body, so every request after the first may be answered from a cache
    Scenario("cache", "cache hit", "/v1/chat/completions",
             _body({"model": MODEL, "messages": [{"role": "user", "content": "Say hello to the cache"}],
                    "max_tokens": 64, "temperature": 0}),
             baseline="chat", unique=False, check="cache", needs_cache=True),
)  # fmt: skip


@dataclass(frozen=True)
class Load:
    """The load settings shared by every phase of a run."""

    duration: float
    warmup: float
    concurrency: int
    rate: float
    timeout: float
    max_inflight: int


def headers_for(scenario: Scenario, api_key: str) -> dict[str, str]:
    if scenario.anthropic_auth:
        return {"x-api-key": api_key, "anthropic-version": "2023-06-01"}
    return {"authorization": f"Bearer {api_key}"}


class Sampler:
    """Peak resident memory of the process trees rooted at ``pids()``, sampled while phases run."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids
        self.peak = 0

    def sample(self) -> int:
        rss = tree_rss(self.pids())
        self.peak = max(self.peak, rss)
        return rss


async def run_phase(spec: dict[str, Any], samplers: list[Sampler]) -> dict[str, Any]:
    """Run one load phase (a :class:`loadgen.Spec` as a dict); returns the loadgen's result plus ``rss_peak``
    (bytes, the first sampler's peak during this phase). Raises ``RuntimeError`` if the load generator fails."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "loadgen.py"), jsonx.dumps(spec).decode(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    peaks = [0] * len(samplers)

    async def sample() -> None:
        while True:
            for i, sampler in enumerate(samplers):
                peaks[i] = max(peaks[i], await asyncio.to_thread(sampler.sample))
            await asyncio.sleep(SAMPLE_EVERY_S)

    sampling = asyncio.ensure_future(sample())
    try:
        out, err = await proc.communicate()
    finally:
        sampling.cancel()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = jsonx.loads(out)
    result["rss_peak"] = peaks[0] if peaks else 0
    return result


def _spec(
    port: int, scenario: Scenario, api_key: str, load: Load, mode: str, cpu_pids: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    return {
        "port": port,
        "path": scenario.path,
        "body": scenario.body,
        "headers": headers_for(scenario, api_key),
        "unique": scenario.unique,
        "mode": mode,
        "concurrency": load.concurrency,
        "rate": load.rate,
        "duration": load.duration,
        "warmup": load.warmup,
        "timeout": load.timeout,
        "max_inflight": load.max_inflight,
        "cpu_pids": cpu_pids or {},
    }


async def warm_up(target: Target, load: Load, seconds: float) -> dict[str, Any]:
    """Drive plain chat at saturation for ``seconds`` and discard it: both gateways run slower for their first
    seconds under load (LiteLLM's workers for ~10 s), which would otherwise count against the first scenario."""
    warm = Load(seconds, 0.0, load.concurrency, load.rate, load.timeout, load.max_inflight)
    return await run_phase(_spec(target.port, SCENARIOS[0], target.api_key, warm, "closed"), [])


async def direct_phases(mock: Mock, load: Load, saturation: bool = True) -> dict[str, dict[str, Any]]:
    """The mock alone, with the same load: fixed-rate latency for the plain and streaming chat bodies (keys
    ``chat`` and ``stream``, the baselines) and, when ``saturation``, a 3 s throughput ceiling for each
    (``chat_saturation``, ``stream_saturation``)."""
    out: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS[:2]:
        if saturation:
            short = Load(min(3.0, load.duration), 0.5, load.concurrency, load.rate, load.timeout, load.max_inflight)
            out[f"{scenario.key}_saturation"] = await run_phase(_spec(mock.port, scenario, "-", short, "closed"), [])
        out[scenario.key] = await run_phase(_spec(mock.port, scenario, "-", load, "open"), [])
    return out


def baseline(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per body and percentile, the lowest of the mock's fixed-rate figures across ``runs`` (one measured before
    each gateway): a background spike in one run must not make a gateway's added latency look smaller."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in ("chat", "stream"):
        out[key] = {}
        for field in ("latency_ms", "ttfb_ms"):
            values = [run[key][field] for run in runs if run.get(key, {}).get(field)]
            out[key][field] = {q: min(v[q] for v in values) for q in ("p50", "p90", "p99")} if values else {}
    return out


async def probe(target: Target, scenario: Scenario, mock: Mock) -> tuple[bool, str]:
    """Whether ``target`` serves ``scenario`` correctly, and a short note saying why not (or how)."""
    url = f"http://127.0.0.1:{target.port}{scenario.path}"
    headers = {"content-type": "application/json", **headers_for(scenario, target.api_key)}
    body = scenario.body.replace("{n}", "probe").encode()
    async with httpx.AsyncClient(timeout=30) as http:

        async def send() -> httpx.Response:
            return await http.post(url, content=body, headers=headers)

        if scenario.check == "cache":
            for _ in range(2):
                first = await send()
                if first.status_code != 200:
                    return False, f"HTTP {first.status_code}: {first.text[:160]}"
            before = await mock.chat_count()
            for _ in range(3):
                await send()
            reached = await mock.chat_count() - before
            if reached:
                return False, f"not supported yet: {reached} of 3 repeated requests reached the provider"
            return True, "repeated requests are answered without reaching the provider"
        resp = await send()
    if resp.status_code != 200:
        return False, f"not supported yet: HTTP {resp.status_code}: {resp.text[:160]}"
    text = resp.text
    wanted = {"chat": '"choices"', "stream": "data: [DONE]", "anthropic": '"type":"message"'}[scenario.check]
    if wanted not in text.replace(" ", "") and wanted not in text:
        return False, f"unexpected reply (no {wanted}): {text[:160]}"
    return True, ""


async def run_scenario(
    target: Target, scenario: Scenario, mock: Mock, load: Load, samplers: list[Sampler]
) -> dict[str, Any]:
    """Probe, then saturation and fixed-rate phases. ``supported`` is false (with ``note``) when the probe fails."""
    ok, note = await probe(target, scenario, mock)
    if not ok:
        return {"supported": False, "note": note}
    # CPU per request: the gateway's own processes, and apart from them the servers it uses (ours only)
    cpu = {"gateway": target.root_pids(), "backing": target.backing_pids()}
    saturation = await run_phase(_spec(target.port, scenario, target.api_key, load, "closed", cpu), samplers)
    fixed_rate = await run_phase(_spec(target.port, scenario, target.api_key, load, "open", cpu), samplers)
    return {"supported": True, "note": note, "saturation": saturation, "fixed_rate": fixed_rate}
