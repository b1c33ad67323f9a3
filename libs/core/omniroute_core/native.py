"""Hot-path modules compiled to C with mypyc, loaded only when they were built from the sources beside them.

The gRPC hop (``omniroute_core.grpc_h2``) runs on every request in every service. Compiled, the same code does a
warm in-process unary call in ~26-29 µs instead of ~53 µs, and the gateway's saturation throughput rose 2-8 %;
fixed-rate latency on the benchmark host did not move, being mostly the cost of waking idle processes
(``bench/PROFILE.md``, round 7). The sources stay the truth: ``tools/build_native.py`` (run by ``make install``
and the image build) compiles the modules listed in :data:`COMPILED` into a ``_native`` folder inside their
package, with a stamp holding the hash of the sources and the interpreter it was built for.

:func:`extend`, called first thing by such a package's ``__init__``, puts that folder ahead of the package's own
in its ``__path__`` only when the stamp matches the sources now on disk and this interpreter: a source edited
after the build, a different Python or a missing compiler simply means the pure-Python modules load, never a
stale binary. ``OMNIROUTE_NATIVE=0`` turns the compiled modules off (to compare, or to debug in Python).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import MutableSequence
from pathlib import Path

from omniroute_core import jsonx

__all__ = ["COMPILED", "NATIVE_DIR", "STAMP", "extend", "loaded", "source_hash", "stamp_for"]

# package → the modules of it that are compiled together (one mypyc group per package). The rule, checked by
# libs/core/tests/test_native.py: no coroutine in a compiled module catches an exception. Compiled, a handler
# coroutine's caught AbortError was still seen by a later call's except clauses (mypyc's exception state across
# an await), so the modules whose coroutines catch stay Python: _server_stream and _server_requests (each call's
# handler task), _balancer (connecting) and _server (start and stop); _calls and _stream_calls too (async
# generators and grpc.aio base classes are beyond mypyc). What is compiled is the per-frame and per-call work.
COMPILED: dict[str, tuple[str, ...]] = {
    "omniroute_core.grpc_h2": (
        "_wire",
        "_hpack",
        "_hpack_decode",
        "_frames",
        "_stream",
        "_connection",
        "_channel",
        "_context",
        "_server_conn",
    ),
}
NATIVE_DIR = "_native"
STAMP = "stamp.json"

log = logging.getLogger(__name__)
_loaded: dict[str, bool] = {}


def source_hash(package_dir: Path, modules: tuple[str, ...]) -> str:
    """The hash of the modules' sources, in order (what a build is valid for)."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(name.encode() + b"\0")
        digest.update((package_dir / f"{name}.py").read_bytes())
    return digest.hexdigest()


def stamp_for(package_dir: Path, modules: tuple[str, ...]) -> dict[str, str]:
    """What a build's stamp records, and what :func:`extend` compares it with."""
    return {"sources": source_hash(package_dir, modules), "python": sys.version, "abi": sys.implementation.cache_tag}


def extend(path: MutableSequence[str], package: str) -> bool:
    """Put ``package``'s compiled modules first on its ``path`` (its ``__path__``) when they match its sources;
    True when they will load."""
    use = False
    if os.environ.get("OMNIROUTE_NATIVE", "1") != "0" and package in COMPILED and path:
        package_dir = Path(path[0])
        native = package_dir / NATIVE_DIR
        try:
            recorded = jsonx.loads((native / STAMP).read_bytes())
        except (OSError, ValueError):
            recorded = None  # never built here (no compiler, or before make install): Python, and nothing to say
        if recorded is not None:
            use = recorded == stamp_for(package_dir, COMPILED[package])
            if use:
                path.insert(0, str(native))
            else:  # a developer edited a source since the build, or the interpreter changed
                log.warning(
                    "%s: its compiled modules were built from other sources or for another Python; running the "
                    "Python ones (make install rebuilds them)",
                    package,
                )
    _loaded[package] = use
    return use


def loaded() -> dict[str, bool]:
    """Package → whether its compiled modules are in use in this process (for tests and diagnosis)."""
    return dict(_loaded)
