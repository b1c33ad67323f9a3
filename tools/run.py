"""`make run`: the whole OmniRoute suite on one machine, no Docker.

Starts PostgreSQL, Redis and NATS JetStream from registry packages (each only when its ``*_URL`` variable is
unset) with their data under the data folder, then the five services, each once what it needs is ready, all
supervised by honcho with prefixed logs. A banner names the URL, the first dashboard password and a curl example
once every service is healthy. Ctrl-C or SIGTERM stops everything; PostgreSQL shuts down cleanly.

Ports, the data folder and external servers are set by environment variables: see ``runlib/layout.py``.
Exit status: honcho's (130 after Ctrl-C, 143 after SIGTERM, else the code of the first process that stopped),
or 1 when a port is taken or the environment is malformed.

The same file is also the entry point of the helper roles (``serve``, ``gate``, ``banner``; see
``runlib/roles.py``), so that they run with this interpreter and find ``runlib`` next to this file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

# Run as a script, Python puts tools/ on sys.path; the helpers are imported as `tools.runlib` (from the repo root)
# so that `mypy tools/run.py` resolves them too, with no extra search path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from honcho.manager import Manager

from omniroute_devservers.servers import KINDS
from tools.runlib.layout import Layout, ensure_encryption_key, resolve, service_env
from tools.runlib.roles import backing_server, banner, gate

HERE = Path(__file__).resolve()


def _shell(argv: Sequence[str | Path]) -> str:
    # honcho runs a shell command line; exec makes the real process the one honcho signals
    return "exec " + shlex.join(str(a) for a in argv)


def _service_argv(name: str) -> list[str]:
    """The service's console script from this venv, or its module when the script is not installed."""
    script = Path(sys.executable).parent / f"omniroute-{name}"
    return [str(script)] if script.exists() else [sys.executable, "-m", f"omniroute_{name}.main"]


def _taken_ports(layout: Layout) -> list[str]:
    wanted = [(f"{b.kind}", b.port) for b in layout.backing]
    for s in layout.services:
        wanted += [(s.port_var, s.port), (f"{s.name.upper()}_METRICS_PORT", s.metrics_port)]
    taken = []
    for var, port in wanted:
        if not port:
            continue  # 0 disables a metrics port
        with socket.socket() as sock:
            # SO_REUSEADDR: a port left in TIME_WAIT by the previous run is free for a server, so free here too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                taken.append(f"{port} ({var})")
    return taken


def launch() -> int:
    """Start the suite and supervise it until Ctrl-C, SIGTERM or the exit of any process."""
    environ = dict(os.environ)
    try:
        layout = resolve(environ, Path.cwd())
    except ValueError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 1
    taken = _taken_ports(layout)
    if taken:
        print(f"run: ports already in use: {', '.join(taken)} (another `make run`?)", file=sys.stderr)
        return 1
    layout.data.mkdir(parents=True, exist_ok=True)
    key = environ.get("OMNIROUTE_ENCRYPTION_KEY") or ensure_encryption_key(layout.data)
    if "QDRANT_PATH" in layout.qdrant:
        Path(layout.qdrant["QDRANT_PATH"]).mkdir(parents=True, exist_ok=True)
    # the roles resolve the same layout from this environment, so the data folder must not depend on their cwd
    environ["OMNIROUTE_DATA_DIR"] = str(layout.data)

    manager = Manager()
    me: list[str | Path] = [sys.executable, HERE]
    for b in layout.backing:
        manager.add_process(
            b.kind, _shell([*me, "serve", b.kind, "--data", b.data, "--port", str(b.port)]), env=environ
        )
    backing = [f"{b.kind}={b.url}" for b in layout.backing]
    for s in layout.services:
        waits = backing + [f"{dep}={layout.service(dep).health}" for dep in s.after]
        argv: list[str | Path] = [*me, "gate", "--timeout", str(layout.start_timeout)]
        for wait in waits:
            argv += ["--wait", wait]
        argv += ["--", *_service_argv(s.name)]
        manager.add_process(s.name, _shell(argv), env=service_env(layout, s, environ, key))
    manager.add_process("omniroute", _shell([*me, "banner"]), env=environ)
    manager.loop()
    return int(manager.returncode or 0)


def main(args: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tools/run.py", description=__doc__.split("\n\n")[0])
    roles = parser.add_subparsers(dest="role", help="internal: the helper processes the launcher starts")
    serve = roles.add_parser("serve")
    serve.add_argument("kind", choices=KINDS)
    serve.add_argument("--data", type=Path, required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--timeout", type=float, default=60.0)
    serve.add_argument("--grace", type=float, default=1.0, help="seconds the services get to stop first")
    gt = roles.add_parser("gate", usage="gate [--timeout S] [--wait NAME=URL ...] -- COMMAND...")
    gt.add_argument("--timeout", type=float, default=120.0)
    gt.add_argument("--wait", action="append", default=[], metavar="NAME=URL")
    roles.add_parser("banner")

    split = args.index("--") if "--" in args else len(args)
    ns = parser.parse_args(args[:split])
    if ns.role == "serve":
        return backing_server(ns.kind, ns.data, ns.port, ns.timeout, ns.grace)
    if ns.role == "gate":
        if not args[split + 1 :]:
            parser.error("gate needs a command after --")
        waits = [(name, url) for name, _, url in (w.partition("=") for w in ns.wait)]
        return gate(waits, args[split + 1 :], ns.timeout)
    if ns.role == "banner":
        return banner(resolve(os.environ, Path.cwd()), os.environ)
    return launch()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
