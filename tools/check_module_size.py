"""Module-size gate (STYLE.md rule 5): a hand-written module over 800 lines fails `make check`."""

from __future__ import annotations

import subprocess
import sys

LIMIT = 800


def main() -> int:
    files = subprocess.run(["git", "ls-files", "*.py"], capture_output=True, text=True, check=True).stdout.split()
    too_big = []
    for path in files:
        if path.startswith("libs/proto/"):
            continue  # generated stubs
        with open(path, encoding="utf-8") as fh:
            lines = sum(1 for _ in fh)
        if lines > LIMIT:
            too_big.append(f"{path}: {lines} lines")
    if too_big:
        print(f"modules over {LIMIT} lines (split them into a package):", *too_big, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
