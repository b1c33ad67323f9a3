"""Run the test suite (`make test`). pytest's exit code 5 (no tests collected) is a failure here, not a pass."""

from __future__ import annotations

import sys

import pytest


def main() -> int:
    code = int(pytest.main(sys.argv[1:]))
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("no tests were collected: that is a failure", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
