"""Regenerate libs/proto/omniroute/v1 from proto/omniroute/v1/*.proto (`make proto`).

The proto folder path mirrors the Python import path (omniroute/v1), so generated imports need no fix-ups.
The output is committed; `make check` regenerates into a temporary folder and fails on any difference.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_ROOT = ROOT / "libs" / "proto"
PACKAGE = Path("omniroute") / "v1"
SCHEMA = "hub.schema.json"


def generate(out_root: Path) -> None:
    target = out_root / PACKAGE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (out_root / "omniroute" / "__init__.py").write_text('"""Generated OmniRoute contracts."""\n')
    (out_root / "omniroute" / "py.typed").write_text("")
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (target / "__init__.py").write_text('"""Generated from proto/omniroute/v1; do not edit (make proto)."""\n')
    shutil.copyfile(PROTO_ROOT / PACKAGE / SCHEMA, target / SCHEMA)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs are stale")
    ns = parser.parse_args()
    if not ns.check:
        generate(OUT_ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh, committed = Path(tmp) / "omniroute", OUT_ROOT / "omniroute"
        stale = _diff(filecmp.dircmp(fresh, committed, ignore=["__pycache__"]))
        if stale:
            print("generated stubs differ from proto/ (run `make proto`):", *stale, sep="\n  ")
            return 1
    return 0


def _diff(cmp: filecmp.dircmp[str]) -> list[str]:
    out = [*cmp.left_only, *cmp.right_only, *cmp.diff_files]
    for sub in cmp.subdirs.values():
        out += _diff(sub)
    return out


if __name__ == "__main__":
    sys.exit(main())
