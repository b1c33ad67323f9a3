"""Compile the hot-path modules listed in ``omniroute_core.native.COMPILED`` with mypyc (``make install`` runs it).

``python tools/build_native.py [--force] [--python EXE]`` builds, for each package, one mypyc group into a
``_native`` folder inside the package (wherever it is installed: the workspace in development, the image's venv
in the Dockerfile) and writes the stamp that ``omniroute_core.native.extend`` checks before loading it. A package
whose stamp already matches its sources is skipped, so the usual run costs a hash. Nothing here is required:
without mypy, a C compiler or Python's headers the build is skipped with a warning and the services run the
same modules as Python (exit code 0; ``--strict`` makes a failed build an error, for the image build).
``--python`` compiles for another environment's interpreter (its site-packages resolve the imports while mypy
type-checks), so a build tool environment need not be the one that runs the services.
"""

from __future__ import annotations

import argparse
import json  # noqa: TID251 - the image's build-tool venv holds mypy only, not orjson
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

# omniroute_core.native's NATIVE_DIR and STAMP: this tool may run where omniroute_core cannot be imported (the
# image's tool venv), so it asks the target interpreter for everything else
NATIVE_DIR = "_native"
STAMP = "stamp.json"


def package_dir(python: str, package: str) -> Path:
    """Where ``package`` is, as seen by ``python`` (its parent package is imported; the package itself is not)."""
    code = f"import importlib.util; print(importlib.util.find_spec({package!r}).submodule_search_locations[0])"
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def stamp(python: str, package: str) -> dict[str, str]:
    """The stamp ``python`` would expect for ``package`` as it is on disk now."""
    code = (
        "import json; from pathlib import Path; from omniroute_core import native; "
        f"import importlib.util; d = Path(importlib.util.find_spec({package!r}).submodule_search_locations[0]); "
        f"print(json.dumps(native.stamp_for(d, native.COMPILED[{package!r}])))"
    )
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def compiled_packages(python: str) -> dict[str, tuple[str, ...]]:
    code = "import json; from omniroute_core import native; print(json.dumps(native.COMPILED))"
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return {k: tuple(v) for k, v in json.loads(out.stdout).items()}


def build_package(python: str, package: str, modules: tuple[str, ...], pkg: Path, expected: dict[str, str]) -> None:
    """One mypyc group for ``package`` (at ``pkg``) into its ``_native`` folder with the stamp ``expected``,
    replaced whole once everything compiled."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    parts = package.split(".")
    top = parts[0]
    top_dir = pkg.parents[len(parts) - 2]
    with tempfile.TemporaryDirectory(prefix="omniroute-native-") as tmp:
        # mypy takes the folder above the top package as a source root, and an installed package's folder is
        # site-packages itself, where every other distribution would shadow a library module: compile a copy
        shutil.copytree(top_dir, Path(tmp) / top, ignore=shutil.ignore_patterns("__pycache__", "_native*"))
        files = [str(Path(*package.split("."), f"{name}.py")) for name in modules]  # relative: tracebacks
        cwd = os.getcwd()
        os.chdir(tmp)  # mypycify writes its C under ./build
        try:
            extensions = mypycify(
                ["--python-executable", python, "--follow-imports", "silent", "--ignore-missing-imports", *files],
                opt_level="3",
                group_name=f"{package}._native",
            )
            dist = Distribution({"name": "omniroute-native", "ext_modules": extensions})
            dist.script_args = ["build_ext", "--build-lib", "out", "--build-temp", "tmp", "--parallel", "2"]
            dist.parse_command_line()
            dist.run_commands()
        finally:
            os.chdir(cwd)
        built = Path(tmp) / "out" / Path(*package.split("."))
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        libs = sorted(built.glob(f"*{suffix}"))
        if len(libs) != len(modules) + 1:  # a shim per module and the group's shared library
            raise RuntimeError(f"expected {len(modules) + 1} extension modules, built {[p.name for p in libs]}")
        # a folder of its own, renamed into place whole: two builds at once (make test beside make run) never
        # mix their files, and a build cut short leaves the previous one (or none) in place
        staging = Path(tempfile.mkdtemp(prefix="_native.new-", dir=pkg))
        try:
            for lib in libs:
                shutil.copy2(lib, staging / lib.name)
            (staging / STAMP).write_text(json.dumps(expected))
            target = pkg / NATIVE_DIR
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=sys.executable, help="the interpreter the services run (default: this one)")
    p.add_argument("--force", action="store_true", help="build even when the stamp matches")
    p.add_argument("--strict", action="store_true", help="a failed build is an error (exit 1), not a warning")
    ns = p.parse_args()
    tag = subprocess.run([ns.python, "-c", "import sys; print(sys.implementation.cache_tag)"],
                         check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    if tag != sys.implementation.cache_tag:  # the extensions are built for this interpreter's ABI
        print(f"build_native: {ns.python} is {tag}, this interpreter {sys.implementation.cache_tag}", file=sys.stderr)
        return 1 if ns.strict else 0
    failed = False
    for package, modules in compiled_packages(ns.python).items():
        pkg = package_dir(ns.python, package)
        expected = stamp(ns.python, package)
        try:
            current = json.loads((pkg / NATIVE_DIR / STAMP).read_text())
        except (OSError, ValueError):
            current = None
        if not ns.force and current == expected:
            continue
        print(f"build_native: compiling {package} ({len(modules)} modules) with mypyc", flush=True)
        try:
            build_package(ns.python, package, modules, pkg, expected)
        except Exception as exc:  # any failure leaves the pure-Python modules in use
            failed = True
            print(f"build_native: {package} not compiled, its Python modules will run: {exc!r}", file=sys.stderr)
    return 1 if failed and ns.strict else 0


if __name__ == "__main__":
    sys.exit(main())
