"""Where everything of a local run lives: ports, URLs, the data folder and the environment of each service.

Every port can be overridden by an environment variable (so tests can run the suite on free ports next to a
developer's own ``make run``). Defaults are the product's ports for the services and non-standard ports for the
backing servers, so a PostgreSQL, Redis or NATS already running on the machine is never touched.

==========================  ===========================  =============================================
what                        default                      override
==========================  ===========================  =============================================
data folder                 ./data                       OMNIROUTE_DATA_DIR
edge (public HTTP)          20128, metrics 9100          EDGE_PORT, EDGE_METRICS_PORT (0: no metrics)
translator (gRPC)           50051, metrics 9101          TRANSLATOR_PORT, TRANSLATOR_METRICS_PORT
executor (gRPC)             50052, metrics 9102          EXECUTOR_PORT, EXECUTOR_METRICS_PORT
usage (gRPC)                50053, metrics 9103          USAGE_PORT, USAGE_METRICS_PORT
dashboard (HTTP)            20129, metrics 9104          DASHBOARD_PORT, DASHBOARD_METRICS_PORT
PostgreSQL                  25432 (<data>/postgres)      OMNIROUTE_PG_PORT, or DATABASE_URL
Redis                       26379 (<data>/redis)         OMNIROUTE_REDIS_PORT, or REDIS_URL
NATS JetStream              24222 (<data>/nats)          OMNIROUTE_NATS_PORT, or NATS_URL
Qdrant (local mode)         <data>/qdrant                QDRANT_PATH, or QDRANT_URL
wait for health             120 s                        OMNIROUTE_START_TIMEOUT
==========================  ===========================  =============================================

Also passed on: REQUIRE_API_KEY (default false), INITIAL_PASSWORD, OMNIROUTE_ENCRYPTION_KEY (default: generated
once into <data>/encryption-key), BIND_HOST (default 127.0.0.1), LOG_LEVEL (default INFO).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from omniroute_core.crypto import generate_encryption_key
from omniroute_devservers.servers import url_for

__all__ = ["Backing", "Layout", "Service", "ensure_encryption_key", "resolve", "service_env"]

LOOPBACK = "127.0.0.1"
KEY_FILE = "encryption-key"
PASSWORD_FILE = "initial-password"
DEFAULT_START_TIMEOUT = 120.0

# name: (port variable, default port, default metrics port, health path or None for gRPC, started after)
_SERVICES: dict[str, tuple[str, int, int, str | None, tuple[str, ...]]] = {
    "translator": ("TRANSLATOR_PORT", 50051, 9101, None, ()),
    "usage": ("USAGE_PORT", 50053, 9103, None, ()),
    "executor": ("EXECUTOR_PORT", 50052, 9102, None, ("translator",)),
    "dashboard": ("DASHBOARD_PORT", 20129, 9104, "/api/monitoring/health", ()),
    # the edge talks to all four; starting it last means "edge healthy" is "the suite answers"
    "edge": ("EDGE_PORT", 20128, 9100, "/health", ("translator", "usage", "executor", "dashboard")),
}

# kind: (URL variable that makes it external, port variable, default port)
_BACKING: dict[str, tuple[str, str, int]] = {
    "postgres": ("DATABASE_URL", "OMNIROUTE_PG_PORT", 25432),
    "redis": ("REDIS_URL", "OMNIROUTE_REDIS_PORT", 26379),
    "nats": ("NATS_URL", "OMNIROUTE_NATS_PORT", 24222),
}


@dataclass(frozen=True, slots=True)
class Service:
    """One of the five services. ``health`` is a probe URL (``grpc://…`` or ``http://…``, see ``probes``)."""

    name: str
    port_var: str
    port: int
    metrics_port: int
    health: str
    after: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "HTTP" if self.health.startswith("http") else "gRPC"


@dataclass(frozen=True, slots=True)
class Backing:
    """A backing server the launcher runs itself (its URL variable was unset)."""

    kind: str
    port: int
    data: Path
    url: str


@dataclass(frozen=True, slots=True)
class Layout:
    """The resolved plan of one run. ``urls`` holds DATABASE_URL, REDIS_URL and NATS_URL, local or external."""

    data: Path
    services: tuple[Service, ...]
    backing: tuple[Backing, ...]
    urls: Mapping[str, str]
    qdrant: Mapping[str, str]
    require_api_key: bool
    start_timeout: float

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    @property
    def edge_url(self) -> str:
        return f"http://localhost:{self.service('edge').port}"


def _port(environ: Mapping[str, str], var: str, default: int, *, zero_disables: bool = False) -> int:
    raw = environ.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not (0 if zero_disables else 1) <= int(raw) < 65536:
        raise ValueError(f"{var} must be a TCP port number, got {raw!r}")
    return int(raw)


def _flag(environ: Mapping[str, str], var: str) -> bool:
    return environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}


def resolve(environ: Mapping[str, str], cwd: Path) -> Layout:
    """Resolve the run from ``environ``; pure (creates nothing). Raises ``ValueError`` on a malformed value."""
    data = (cwd / environ.get("OMNIROUTE_DATA_DIR", "data")).resolve()
    services = []
    for name, (port_var, default_port, default_metrics, path, after) in _SERVICES.items():
        port = _port(environ, port_var, default_port)
        health = f"http://{LOOPBACK}:{port}{path}" if path else f"grpc://{LOOPBACK}:{port}"
        metrics = _port(environ, f"{name.upper()}_METRICS_PORT", default_metrics, zero_disables=True)
        services.append(Service(name, port_var, port, metrics, health, after))
    backing, urls = [], {}
    for kind, (url_var, port_var, default_port) in _BACKING.items():
        external = environ.get(url_var, "").strip()
        if external:
            urls[url_var] = external
            continue
        port = _port(environ, port_var, default_port)
        backing.append(Backing(kind, port, data / kind, url_for(kind, port)))
        urls[url_var] = url_for(kind, port)
    qdrant_url = environ.get("QDRANT_URL", "").strip()
    qdrant = (
        {"QDRANT_URL": qdrant_url}
        if qdrant_url
        else {"QDRANT_PATH": environ.get("QDRANT_PATH") or str(data / "qdrant")}
    )
    raw_timeout = environ.get("OMNIROUTE_START_TIMEOUT", "").strip()
    try:
        timeout = float(raw_timeout) if raw_timeout else DEFAULT_START_TIMEOUT
    except ValueError:
        raise ValueError(f"OMNIROUTE_START_TIMEOUT must be a number of seconds, got {raw_timeout!r}") from None
    return Layout(data, tuple(services), tuple(backing), urls, qdrant, _flag(environ, "REQUIRE_API_KEY"), timeout)


def ensure_encryption_key(data: Path) -> str:
    """The key kept in ``<data>/encryption-key`` (mode 0600), generated on first use.

    Losing it makes every stored provider credential unreadable, so it is created exclusively and never rewritten.
    """
    path = data / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_encryption_key() + "\n")
    return path.read_text().strip()


def service_env(layout: Layout, service: Service, base: Mapping[str, str], key: str) -> dict[str, str]:
    """The full environment of ``service``: ``base`` (the launcher's own) plus the suite's contract variables."""
    port = {s.name: s.port for s in layout.services}
    env = dict(base)
    env.update(layout.urls)
    env.update(
        TRANSLATOR_ADDR=f"{LOOPBACK}:{port['translator']}",
        EXECUTOR_ADDR=f"{LOOPBACK}:{port['executor']}",
        USAGE_ADDR=f"{LOOPBACK}:{port['usage']}",
        DASHBOARD_URL=f"http://{LOOPBACK}:{port['dashboard']}",
        OMNIROUTE_ENCRYPTION_KEY=key,
        OMNIROUTE_DATA_DIR=str(layout.data),
        BIND_HOST=base.get("BIND_HOST") or LOOPBACK,
        LOG_LEVEL=base.get("LOG_LEVEL") or "INFO",
        REQUIRE_API_KEY="true" if layout.require_api_key else "false",
        METRICS_PORT=str(service.metrics_port),
        # honcho relays lines as they come; a block-buffered child would show its logs minutes late
        PYTHONUNBUFFERED="1",
    )
    env[service.port_var] = str(service.port)
    if service.name == "edge":
        env.update(layout.qdrant)
    return env
