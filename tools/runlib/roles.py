"""The helper processes the launcher runs under honcho next to the servers.

honcho starts every process at once and stops them all when any one exits, so ordering and the banner are
processes too: each service starts through a *gate* that waits for what it needs and then execs the service;
the *banner* waits until the suite is healthy, prints how to use it and then stays alive until stopped;
each *backing server* runs behind a guard that stops it cleanly, and only after the services.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from omniroute_devservers.servers import command, ensure_database, wait_ready
from tools.runlib.layout import PASSWORD_FILE, Layout
from tools.runlib.probes import wait_ready as wait_url

__all__ = ["backing_server", "banner", "gate"]


def _say(text: str) -> None:
    print(text, flush=True)


def backing_server(kind: str, data: Path, port: int, timeout: float, grace: float) -> int:
    """Run the ``kind`` server on ``port`` with ``data`` until SIGTERM or SIGINT, then stop it cleanly.

    honcho stops a process by sending SIGTERM to its whole process group, to every process at once, and SIGKILLs
    what is left 5 s after the first one exits. For PostgreSQL a SIGTERM is a "smart" shutdown that waits for
    every client, and it would reach each backend directly. So the server runs in its own session, out of
    honcho's reach; on a signal this guard waits ``grace`` seconds, so that the services can still flush to it
    while they stop, then sends SIGINT: PostgreSQL's fast shutdown (clients disconnected, shutdown checkpoint
    written), a clean stop for Redis and NATS. Keep ``grace`` well under honcho's 5 s.

    For PostgreSQL, database ``omniroute`` is created when missing. Returns the server's exit code.
    """
    proc = subprocess.Popen(command(kind, data, port), start_new_session=True)
    ready = False

    def abort_start() -> None:
        # Still starting, so nothing depends on it yet: stop its whole session at once, which also reaches an
        # initdb still running under the preparing Python (initdb then removes its half-made data folder).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

    stop_at: float | None = None

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_at
        if stop_at is not None:
            return
        stop_at = time.monotonic() + grace
        if not ready:
            abort_start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        wait_ready(kind, port, timeout=timeout, proc=proc)
        if kind == "postgres":
            ensure_database(port)
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        if stop_at is None:
            _say(f"{kind} did not start: {exc}")
            abort_start()
        return proc.wait() or 1
    ready = True
    _say(f"{kind} ready on 127.0.0.1:{port}, data in {data}")
    while True:
        try:
            return proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            if stop_at is not None and time.monotonic() >= stop_at:
                proc.send_signal(signal.SIGINT)
                stop_at = float("inf")  # signalled once; now only wait


def gate(waits: Sequence[tuple[str, str]], argv: Sequence[str], timeout: float) -> int:  # noqa: RET503 (os.execvp never returns)
    """Wait until every ``(name, probe URL)`` in ``waits`` is ready, then replace this process with ``argv``.

    Returns 1 (never execs) when one is not ready within ``timeout`` seconds.
    """
    if waits:
        _say(f"waiting for {', '.join(name for name, _ in waits)}")
    deadline = time.monotonic() + timeout
    for name, url in waits:
        if not wait_url(url, deadline):
            _say(f"gave up: {name} was not ready at {url} within {timeout:.0f}s")
            return 1
    os.execvp(argv[0], list(argv))


def _password_line(data: Path, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The banner's password line and the password itself when it is shown (this once) for the curl example.

    The dashboard writes a generated first password to ``<data>/initial-password``; it is deleted once printed
    so it never sits on disk or reappears in a later start's log.
    """
    path = data / PASSWORD_FILE
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        password = ""
    if password:
        path.unlink()
        return f"first dashboard password: {password}   (shown once: note it, or change it in the dashboard)", password
    if environ.get("INITIAL_PASSWORD"):
        return "dashboard password: set by INITIAL_PASSWORD", None
    return "dashboard password: already set on a previous start", None


def _curl_example(layout: Layout, password: str | None) -> list[str]:
    url = layout.edge_url
    # one line per command: honcho prefixes every line, which would break a shell continuation
    lines = [
        "try it (add a provider in the dashboard first):",
        f"  curl -c cookies.txt -H 'content-type: application/json' "
        f'-d \'{{"password": "{password or "<your password>"}"}}\' {url}/api/auth/login',
    ]
    auth = ""
    if layout.require_api_key:
        lines.append(
            f"  curl -b cookies.txt -H 'content-type: application/json' -d '{{\"name\": \"local\"}}' {url}/api/keys"
            "   # copy the key it returns into OMNIROUTE_API_KEY"
        )
        auth = ' -H "Authorization: Bearer $OMNIROUTE_API_KEY"'
    lines.append(
        f"  curl {url}/v1/chat/completions -H 'content-type: application/json'{auth} "
        '-d \'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}\''
    )
    return lines


def banner(layout: Layout, environ: Mapping[str, str]) -> int:
    """Wait until every service is healthy, print how to use the suite, then block until SIGTERM or SIGINT.

    Returns 1 after naming the first service that is not healthy within ``layout.start_timeout``: honcho then
    stops the whole suite. Staying alive after printing matters for the same reason: an exit would stop it too.
    """
    deadline = time.monotonic() + layout.start_timeout
    for service in layout.services:
        if not wait_url(service.health, deadline):
            _say(
                f"ERROR: the {service.name} service is not healthy after {layout.start_timeout:.0f}s "
                f"({service.kind} health check {service.health}); its own lines above say why"
            )
            return 1
    password_line, password = _password_line(layout.data, environ)
    lines = [
        "=" * 72,
        f"OmniRoute is ready at {layout.edge_url}",
        f"  management API: {layout.edge_url}/api (log in with the dashboard password)",
        f"  API keys required: {'yes' if layout.require_api_key else 'no'} (REQUIRE_API_KEY)",
        f"  {password_line}",
        f"  data folder: {layout.data}",
        *_curl_example(layout, password),
        "Ctrl-C stops everything.",
        "=" * 72,
    ]
    _say("\n".join(lines))

    def leave(_signum: int, _frame: FrameType | None) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    while True:
        signal.pause()
