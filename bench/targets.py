"""The processes a benchmark run drives: the mock provider, our suite (with its backing servers) and LiteLLM.

Each target starts on free 127.0.0.1 ports, is ready (health-checked and configured) when ``start`` returns,
names the root processes whose trees count towards its memory (:meth:`Target.root_pids`), and stops everything
it started in ``stop``. Only one gateway runs at a time: the machine has two cores.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the lock; only pids and rss are read

from bench.loadgen import cpu_seconds, process_trees
from omniroute_core import jsonx
from omniroute_devservers.servers import command, ensure_database, free_port, url_for, wait_ready
from omniroute_devservers.suite import TEST_PASSWORD, Suite

__all__ = [
    "LITELLM_MASTER_KEY",
    "MODEL",
    "LiteLLM",
    "Mock",
    "OmniRoute",
    "Target",
    "ensure_litellm",
    "settle",
    "stop_tree",
    "tree_cpu_seconds",
    "tree_rss",
    "tree_rss_by_process",
]

HERE = Path(__file__).resolve().parent
MODEL = "openai/gpt-4o-mini"  # the same model string reaches both gateways
UPSTREAM_KEY = "sk-bench-upstream"
LITELLM_MASTER_KEY = "sk-bench-master"
LITELLM_VERSION = "1.106.2"


class Target(Protocol):
    """A gateway under test: serves on 127.0.0.1:``port`` with ``api_key`` once ``start`` returns; ``root_pids``
    are the processes whose trees count as its memory; ``backing_pids`` those of servers it needs but that are
    not the gateway (empty when none); ``stop`` ends everything it started."""

    name: str
    port: int
    api_key: str

    async def start(self) -> None: ...

    def root_pids(self) -> list[int]: ...

    def backing_pids(self) -> list[int]: ...

    def stop(self) -> None: ...


def tree_rss(pids: list[int]) -> int:
    """Resident bytes of ``pids`` and all their descendants (processes that vanish mid-count are skipped)."""
    total, seen = 0, set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                total += int(proc.memory_info().rss)
            except psutil.Error:
                continue
    return total


def tree_rss_by_process(pids: list[int]) -> dict[str, int]:
    """Resident bytes per process of the trees rooted at ``pids``, keyed ``<pid> <module or program>``."""
    out: dict[str, int] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            try:
                argv = proc.cmdline()
                rss = int(proc.memory_info().rss)
            except psutil.Error:
                continue
            # "python -m omniroute_edge.main" → omniroute_edge.main; LiteLLM's workers are "python -c ..."
            label = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else Path(argv[1] if len(argv) > 1 else "?").name
            if "-c" in argv[:-1]:
                code = argv[argv.index("-c") + 1]
                label = "resource tracker" if "resource_tracker" in code else "worker" if "spawn_main" in code else "-c"
            out[f"{proc.pid} {label}"] = rss
    return out


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``pids`` and their descendants."""
    return cpu_seconds(process_trees(pids))


async def settle(pids: Callable[[], list[int]], limit_s: float = 90.0, busy: float = 0.1) -> float:
    """Wait until the process trees are idle (under ``busy`` of a core over a second), for at most ``limit_s``:
    a target that answers its first request may still be importing modules or starting workers.
    Returns the seconds waited."""
    started = time.monotonic()
    last = await asyncio.to_thread(tree_cpu_seconds, pids())
    while time.monotonic() - started < limit_s:
        await asyncio.sleep(1.0)
        now = await asyncio.to_thread(tree_cpu_seconds, pids())
        if now - last < busy:
            break
        last = now
    return time.monotonic() - started


def stop_tree(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signal ``proc``, wait, then kill it and whatever descendants it left behind (only that tree)."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _, alive = psutil.wait_procs(descendants, timeout=5)
    for child in alive:
        child.kill()


async def _until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Await ``check()`` (an async callable returning bool) until it is true; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            if await check():
                return
        except (httpx.HTTPError, OSError):
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def _spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log``; returns at once (the caller health-checks)."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


class Mock:
    """The mock provider (``mock_provider.py``) in its own process."""

    def __init__(self, workdir: Path, latency_ms: float, chunks: int, chunk_delay_ms: float) -> None:
        self.port = free_port()
        self.argv = [
            sys.executable, str(HERE / "mock_provider.py"), "--port", str(self.port), "--latency-ms", str(latency_ms),
            "--chunks", str(chunks), "--chunk-delay-ms", str(chunk_delay_ms),
        ]  # fmt: skip
        self.log = workdir / "mock.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        self.proc = _spawn(self.argv, self.log)
        async with httpx.AsyncClient(timeout=2) as http:

            async def up() -> bool:
                return (await http.get(f"http://127.0.0.1:{self.port}/health")).status_code == 200

            await _until(up, "mock provider", 15, self.proc)

    async def chat_count(self) -> int:
        """Chat completions the mock has answered so far."""
        async with httpx.AsyncClient(timeout=5) as http:
            return int((await http.get(f"http://127.0.0.1:{self.port}/stats")).json()["chat"])

    def stop(self) -> None:
        if self.proc is not None:
            stop_tree(self.proc)


class _Backing:
    """A private PostgreSQL, Redis or NATS server (the test plugin's recipe) with its data under ``root``."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind, self.port = kind, free_port()
        self.log = (root / f"{kind}.log").open("wb")
        self.proc = subprocess.Popen(command(kind, root / kind, self.port), stdout=self.log, stderr=subprocess.STDOUT)
        wait_ready(kind, self.port, proc=self.proc)
        if kind == "postgres":
            ensure_database(self.port)
        self.url = url_for(kind, self.port)

    def stop(self) -> None:
        stop_tree(self.proc, signal.SIGINT)  # PostgreSQL's fast shutdown; the others treat it like SIGTERM
        self.log.close()


class OmniRoute:
    """Our five services (``Suite``) against private backing servers, configured with one OpenAI provider whose
    base URL is the mock, and one API key (required by the edge, as on a shared team gateway)."""

    name = "omniroute"

    def __init__(self, workdir: Path, mock: Mock) -> None:
        self.workdir = workdir / "omniroute"
        self.mock = mock
        self.backing: list[_Backing] = []
        self.suite: Suite | None = None
        self.port = 0
        self.api_key = ""

    async def start(self) -> None:
        servers = self.workdir / "servers"
        servers.mkdir(parents=True, exist_ok=True)
        for kind in ("postgres", "redis", "nats"):
            self.backing.append(await asyncio.to_thread(_Backing, kind, servers))
        urls = {b.kind: b.url for b in self.backing}
        self.suite = Suite(self.workdir / "suite", urls["postgres"], urls["redis"], urls["nats"],
                           extra_env={"REQUIRE_API_KEY": "true"})  # fmt: skip
        self.suite.root.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.suite.start)
        self.port = self.suite.ports["edge"]
        await self._configure()

    async def _configure(self) -> None:
        assert self.suite is not None
        async with httpx.AsyncClient(base_url=self.suite.edge_url, timeout=10) as admin:
            resp = await admin.post("/api/auth/login", json={"password": TEST_PASSWORD})
            resp.raise_for_status()
            provider = {"provider": "openai", "name": "bench", "apiKey": UPSTREAM_KEY, "baseUrl": self.mock.base_url}
            (await admin.post("/api/providers", json=provider)).raise_for_status()
            resp = await admin.post("/api/keys", json={"name": "bench", "scopes": ["chat"]})
            resp.raise_for_status()
            self.api_key = str(resp.json()["key"])
            body = {"model": MODEL, "messages": [{"role": "user", "content": "ping"}]}
            headers = {"authorization": f"Bearer {self.api_key}"}

            async def serves() -> bool:
                # the key and the provider reach the data plane through the NATS snapshot, within milliseconds
                return (await admin.post("/v1/chat/completions", json=body, headers=headers)).status_code == 200

            await _until(serves, "omniroute chat", 15)

    def root_pids(self) -> list[int]:
        if self.suite is None:
            return []
        return [p.popen.pid for p in self.suite.procs.values() if p.popen is not None and p.popen.poll() is None]

    def backing_pids(self) -> list[int]:
        return [b.proc.pid for b in self.backing if b.proc.poll() is None]

    def service_pids(self) -> dict[str, int]:
        """Service name → pid (for the profiler)."""
        assert self.suite is not None
        return {k: p.popen.pid for k, p in self.suite.procs.items() if p.popen is not None}

    def stop(self) -> None:
        if self.suite is not None:
            self.suite.stop()
        for backing in reversed(self.backing):
            backing.stop()


def ensure_litellm(venv: Path) -> Path:
    """The ``litellm`` executable of ``litellm[proxy]==1.106.2`` in its own venv at ``venv``, installed only when
    missing (with uv, from the package index). Returns the executable's path."""
    exe = venv / "bin" / "litellm"
    python = venv / "bin" / "python"
    if exe.exists() and _installed_version(python) == LITELLM_VERSION:
        return exe
    # `make bench` passes the uv it bootstrapped (a fresh machine has none on PATH)
    uv = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local/share/omniroute/uv/bin/uv")
    if not python.exists():
        subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
    print(f"bench: installing litellm[proxy]=={LITELLM_VERSION} into {venv}", flush=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), f"litellm[proxy]=={LITELLM_VERSION}"],
                   check=True)  # fmt: skip
    return exe


def _installed_version(python: Path) -> str:
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    return probe.stdout.strip()


class LiteLLM:
    """LiteLLM's proxy: 2 uvicorn workers, no database, the local cost map, one model routed to the mock, a master
    key (this version refuses to start without one).

    ``cache`` turns on LiteLLM's in-memory response cache (for the cache-hit scenario only: LiteLLM ships with
    it off, so the other scenarios run without it). Logging is at ERROR, which also silences uvicorn's
    per-request access log (our edge runs without one too). Anthropic ``/v1/messages`` requests are translated to
    the provider's Chat Completions (``LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES``), as ours are,
    instead of to OpenAI's Responses API. Workers get 120 s, not uvicorn's 5 s, to answer the supervisor's
    health ping: importing LiteLLM on a busy 2-core machine takes longer, and the supervisor would otherwise kill
    and respawn them in a loop.
    """

    def __init__(self, workdir: Path, mock: Mock, exe: Path, *, cache: bool = False) -> None:
        self.name = "litellm (cache on)" if cache else "litellm"
        self.workdir = workdir / ("litellm-cache" if cache else "litellm")
        self.cache = cache
        self.mock = mock
        self.exe = exe
        self.port = free_port()
        self.api_key = LITELLM_MASTER_KEY
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> bytes:
        # JSON is YAML, and LiteLLM reads its config with a YAML loader
        return jsonx.dumps({
            "model_list": [{
                "model_name": MODEL,
                "litellm_params": {"model": MODEL, "api_base": self.mock.base_url, "api_key": UPSTREAM_KEY},
            }],
            "general_settings": {"master_key": LITELLM_MASTER_KEY},
            "litellm_settings": {"cache": True, "cache_params": {"type": "local"}} if self.cache else {},
        })  # fmt: skip

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "config.yaml"
        cfg.write_bytes(self.config())
        drop = ("DATABASE_URL", "REDIS_URL", "NATS_URL", "REDIS_HOST", "STORE_MODEL_IN_DB")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env |= {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
            "PYTHONUNBUFFERED": "1",
        }
        argv = [str(self.exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(self.port),
                "--num_workers", "2", "--timeout_worker_healthcheck", "120"]  # fmt: skip
        self.proc = _spawn(argv, self.workdir / "litellm.log", env=env, cwd=self.workdir)
        body = {"model": MODEL, "messages": [{"role": "user", "content": "ping"}]}
        headers = {"authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=10) as http:

            async def serves() -> bool:
                return (await http.post("/v1/chat/completions", json=body, headers=headers)).status_code == 200

            await _until(serves, "litellm", 240, self.proc)

    def root_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def backing_pids(self) -> list[int]:
        return []  # no database: LiteLLM runs alone

    def stop(self) -> None:
        if self.proc is not None:
            stop_tree(self.proc)
