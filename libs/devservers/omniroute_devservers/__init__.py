"""Real backing servers from registry packages, for `make run` and the test suite."""
