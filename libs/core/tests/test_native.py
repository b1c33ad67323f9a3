"""The compiled hot-path modules: loaded only when built from the sources on disk, and the Python ones otherwise.

``make install`` compiles them (tools/build_native.py), so in a checkout with a C compiler this process runs the
compiled gRPC hop and every other test exercises it; the last test runs one hop with them turned off.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import omniroute_core.grpc_h2._frames as frames_module
from omniroute_core import jsonx, native

PACKAGE = "test_pkg.fast"

# make install compiled this checkout's modules, unless there is no C compiler or they are turned off
needs_compiled = pytest.mark.skipif(
    not (shutil.which("gcc") or shutil.which("cc")) or os.environ.get("OMNIROUTE_NATIVE") == "0",
    reason="no C compiler here (the modules run as Python), or compiled modules turned off",
)


def _package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, built: bool = False, stamp: dict[str, str] | None = None
) -> Path:
    """A package folder with two modules, listed in COMPILED, and a ``_native`` folder holding ``stamp`` (or, when
    ``built``, the stamp a build of these sources leaves). OMNIROUTE_NATIVE is unset."""
    monkeypatch.delenv("OMNIROUTE_NATIVE", raising=False)
    pkg = tmp_path / "fast"
    (pkg / native.NATIVE_DIR).mkdir(parents=True)
    (pkg / "a.py").write_text("A = 1\n")
    (pkg / "b.py").write_text("B = 2\n")
    monkeypatch.setitem(native.COMPILED, PACKAGE, ("a", "b"))
    if built:
        stamp = native.stamp_for(pkg, ("a", "b"))
    if stamp is not None:
        (pkg / native.NATIVE_DIR / native.STAMP).write_text(jsonx.dumps_str(stamp))
    return pkg


def test_a_build_of_these_sources_goes_first_on_the_package_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = _package(tmp_path, monkeypatch, built=True)
    path = [str(pkg)]
    assert native.extend(path, PACKAGE)
    assert path == [str(pkg / native.NATIVE_DIR), str(pkg)]
    assert native.loaded()[PACKAGE] is True


def test_a_source_edited_after_the_build_loads_the_python_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pkg = _package(tmp_path, monkeypatch, built=True)
    (pkg / "b.py").write_text("B = 3\n")
    path = [str(pkg)]
    assert not native.extend(path, PACKAGE)
    assert path == [str(pkg)]
    assert native.loaded()[PACKAGE] is False
    # said once, where a developer who forgot to rebuild will look
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "make install rebuilds them" in caplog.records[0].getMessage()


def test_never_built_is_not_worth_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pkg = _package(tmp_path, monkeypatch)  # no stamp: no compiler, or a fresh checkout before make install
    path = [str(pkg)]
    assert not native.extend(path, PACKAGE)
    assert path == [str(pkg)]
    assert caplog.records == []


@pytest.mark.parametrize(
    "stamp",
    [
        {"sources": "0" * 64, "python": sys.version, "abi": sys.implementation.cache_tag},
        {"sources": "", "python": "3.12.0", "abi": "cpython-312"},  # built for another interpreter
    ],
)
def test_a_build_of_other_sources_or_for_another_python_is_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamp: dict[str, str]
) -> None:
    pkg = _package(tmp_path, monkeypatch, stamp=stamp)
    if stamp["python"] != sys.version:
        stamp["sources"] = native.source_hash(pkg, ("a", "b"))  # the sources match; the interpreter does not
        (pkg / native.NATIVE_DIR / native.STAMP).write_text(jsonx.dumps_str(stamp))
    path = [str(pkg)]
    assert not native.extend(path, PACKAGE)
    assert path == [str(pkg)]


def test_an_unreadable_stamp_is_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = _package(tmp_path, monkeypatch)
    (pkg / native.NATIVE_DIR / native.STAMP).write_text("{not json")
    path = [str(pkg)]
    assert not native.extend(path, PACKAGE)


def test_omniroute_native_0_turns_a_valid_build_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = _package(tmp_path, monkeypatch, built=True)
    monkeypatch.setenv("OMNIROUTE_NATIVE", "0")
    path = [str(pkg)]
    assert not native.extend(path, PACKAGE)
    assert path == [str(pkg)]


@needs_compiled
def test_this_checkout_runs_the_compiled_grpc_hop() -> None:
    # make install built them; if this fails, run `python tools/build_native.py` and read its message
    assert native.loaded().get("omniroute_core.grpc_h2") is True
    assert (frames_module.__file__ or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@needs_compiled
def test_the_build_is_skipped_while_the_sources_match_it() -> None:
    import omniroute_core.grpc_h2 as package

    stamp = Path(package.__file__ or "").parent / native.NATIVE_DIR / native.STAMP
    assert stamp.exists()
    before = stamp.stat().st_mtime_ns
    tool = Path(__file__).resolve().parents[3] / "tools" / "build_native.py"
    out = subprocess.run([sys.executable, str(tool)], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "compiling" not in out.stdout
    assert stamp.stat().st_mtime_ns == before


def test_the_python_modules_serve_a_call_when_compiled_ones_are_off() -> None:
    script = """
import asyncio, grpc
import omniroute_core.grpc_h2._frames as f
from omniroute_core import native
from omniroute_core.grpc_h2 import H2Channel, H2Server

async def echo_request(request, context):
    return request

async def main():
    server = H2Server(max_receive=1 << 20)
    echo = grpc.unary_unary_rpc_method_handler(echo_request)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.S", {"echo": echo}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = H2Channel(f"127.0.0.1:{port}", max_message=1 << 20)
    reply = await channel.unary_unary("/t.S/echo")(b"ping", timeout=5)
    await channel.close()
    await server.stop(None)
    print(reply.decode(), native.loaded()["omniroute_core.grpc_h2"], f.__file__.endswith(".py"))

asyncio.run(main())
"""
    env = {**os.environ, "OMNIROUTE_NATIVE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ping", "False", "True"]


@pytest.mark.parametrize("package", sorted(native.COMPILED))
def test_no_coroutine_in_a_compiled_module_catches_an_exception(package: str) -> None:
    # the rule COMPILED's comment gives: mypyc carried a caught exception from one coroutine into another's
    # except clauses; a module that needs one stays Python
    package_dir = Path(__import__(package, fromlist=["_"]).__file__ or "").parent
    catching = []
    for name in native.COMPILED[package]:
        tree = ast.parse((package_dir / f"{name}.py").read_text())
        for func in ast.walk(tree):
            if isinstance(func, ast.AsyncFunctionDef):
                catching += [
                    f"{name}.{func.name}:{n.lineno}" for n in ast.walk(func) if isinstance(n, ast.Try) and n.handlers
                ]
    assert catching == []
