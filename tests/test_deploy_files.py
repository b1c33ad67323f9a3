"""The container files agree with each other, with the services' packages and with ``make run``'s ports.

No Docker engine runs where the tests run, so this reads the files: every service has a Dockerfile target that
installs only its own package from the lock file and runs its console script as a non-root user on its port,
and docker-compose.yml wires the same ports, addresses and health conditions. When ``docker-compose`` or
``hadolint`` is installed, the files also go through them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("edge", "translator", "executor", "usage", "dashboard")
SHARED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "NATS_URL",
    "TRANSLATOR_ADDR",
    "EXECUTOR_ADDR",
    "USAGE_ADDR",
    "DASHBOARD_URL",
    "OMNIROUTE_ENCRYPTION_KEY",
    "BIND_HOST",
    "LOG_LEVEL",
    "METRICS_PORT",
)
GRPC = {"translator", "executor", "usage"}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def _dockerfile() -> dict[str, Stage]:
    """Stages by name, each with its instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arg = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arg, re.IGNORECASE)
            assert match, line
            current = Stage(match.group(2) or f"stage{len(stages)}", match.group(1))
            stages[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, arg))
    return stages


def _chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """``name`` and the stages it is built FROM, nearest first."""
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for arg in stage.values("ENV"):
        env.update(re.findall(r"(\w+)=(\S+)", arg))
    return env


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def _launcher_layout() -> ModuleType:
    """``tools/runlib/layout.py``, loaded from its file (``tools`` is not an installed package)."""
    spec = importlib.util.spec_from_file_location("_run_layout", REPO / "tools" / "runlib" / "layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return _dockerfile()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _compose()


@pytest.fixture(scope="module")
def ports() -> dict[str, tuple[str, int, int]]:
    """What ``make run`` uses by default: service name → (port variable, port, metrics port)."""
    layout = _launcher_layout().resolve({}, REPO)
    return {s.name: (s.port_var, s.port, s.metrics_port) for s in layout.services}


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_target_running_its_console_script(
    name: str, stages: dict[str, Stage], ports: dict[str, tuple[str, int, int]]
) -> None:
    assert name in stages, f"no Dockerfile target {name!r}"
    chain = _chain(stages, name)
    target = chain[0]
    assert target.values("CMD") == [f'["omniroute-{name}"]']
    scripts = tomllib.loads((REPO / "services" / name / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[f"omniroute-{name}"] == f"omniroute_{name}.main:main"

    port_var, port, metrics = ports[name]
    env = {k: v for stage in reversed(chain) for k, v in _env(stage).items()}
    assert env[port_var] == str(port)
    assert env["METRICS_PORT"] == str(metrics)
    assert env.get("BIND_HOST") == "0.0.0.0", "a container must listen beyond its own loopback"
    exposed = {p for arg in target.values("EXPOSE") for p in arg.split()}
    assert {str(port), str(metrics)} <= exposed

    users = [u for stage in chain for u in stage.values("USER")]
    assert users, "the runtime must switch to a non-root user"
    uid = users[0].split(":")[0]
    assert uid not in {"0", "root"}

    (health,) = target.values("HEALTHCHECK")
    assert port_var in health
    assert ("grpc_health" in health) == (name in GRPC)


@pytest.mark.parametrize("name", SERVICES)
def test_each_target_installs_only_its_package_from_the_lock(name: str, stages: dict[str, Stage]) -> None:
    target = stages[name]
    (copy,) = [c for c in target.values("COPY") if "--from=" in c]
    assert copy.split() == [f"--from=build-{name}", "/app/.venv", "/app/.venv"]
    (run,) = stages[f"build-{name}"].values("RUN")
    sync, build = run.split(" && ")
    argv = sync.split()
    assert argv[argv.index("uv") :] == [
        "uv",
        "sync",
        "--frozen",
        "--no-dev",
        "--no-editable",
        "--package",
        f"omniroute-{name}",
    ]
    # then the hot-path modules compiled into that venv (by the builder's tool venv, which stays behind)
    assert build.split() == [
        "/opt/build-tools/bin/python",
        "tools/build_native.py",
        "--python",
        "/app/.venv/bin/python",
        "--strict",
    ]
    runtime = _chain(stages, name)[1]
    assert runtime.base == stages["builder"].base, "the venv links to the builder's interpreter: same image"


def test_the_builder_takes_uv_from_pypi_and_downloads_nothing_else(stages: dict[str, Stage]) -> None:
    runs = [arg for stage in stages.values() for arg in stage.values("RUN")]
    assert not [r for r in runs if re.search(r"\b(curl|wget)\b", r)]
    assert any(re.search(r"pip install .*\buv==\d", r) for r in runs)
    copied = " ".join(stages["builder"].values("COPY"))
    assert "uv.lock" in copied


def test_compose_builds_each_service_from_its_target(
    compose: dict[str, Any], ports: dict[str, tuple[str, int, int]]
) -> None:
    services = compose["services"]
    for name in SERVICES:
        service = services[name]
        assert service["build"] == {"context": ".", "target": name}
        env = service["environment"]
        assert set(SHARED_ENV) <= set(env), f"{name} lacks {set(SHARED_ENV) - set(env)}"
        port_var, port, metrics = ports[name]
        assert str(env[port_var]) == str(port)
        assert str(env["METRICS_PORT"]) == str(metrics)
        assert env["TRANSLATOR_ADDR"] == f"translator:{ports['translator'][1]}"
        assert env["EXECUTOR_ADDR"] == f"executor:{ports['executor'][1]}"
        assert env["USAGE_ADDR"] == f"usage:{ports['usage'][1]}"
        assert env["DASHBOARD_URL"] == f"http://dashboard:{ports['dashboard'][1]}"
        assert "@postgres:5432/omniroute" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert env["NATS_URL"] == "nats://nats:4222"
    assert services["edge"]["environment"]["QDRANT_URL"] == "http://qdrant:6333"
    assert "REQUIRE_API_KEY" in services["edge"]["environment"]
    assert "INITIAL_PASSWORD" in services["dashboard"]["environment"]


def test_only_the_edge_is_published(compose: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in compose["services"].items() if "ports" in s}
    assert published == {"edge": ["20128:20128"]}


def test_backing_servers_are_the_agreed_images_with_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["nats"]["image"].startswith("nats:2.10")
    assert "-js" in services["nats"]["command"]
    assert services["qdrant"]["image"].startswith("qdrant/qdrant")
    for name in ("postgres", "redis", "nats", "qdrant"):
        (volume,) = services[name]["volumes"]
        assert volume.split(":")[0] in compose["volumes"], f"{name} data must survive the container"


def test_every_dependency_is_waited_for_until_healthy(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, rule in service.get("depends_on", {}).items():
            assert rule == {"condition": "service_healthy"}, f"{name} → {dep}"
            has_check = "healthcheck" in services[dep] or (dep in stages and stages[dep].values("HEALTHCHECK"))
            assert has_check, f"{name} waits for {dep} to be healthy, but {dep} has no health check"
    assert set(services["edge"]["depends_on"]) >= {"translator", "executor", "usage", "dashboard"}


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {"**/.venv", "**/.git", "data"} <= ignored
    assert "uv.lock" not in ignored


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file() -> None:
    env = {**os.environ, "OMNIROUTE_ENCRYPTION_KEY": "A" * 43 + "="}
    result = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed")
def test_hadolint_accepts_the_dockerfile() -> None:
    result = subprocess.run(["hadolint", "Dockerfile"], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
