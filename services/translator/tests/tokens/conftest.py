"""One :class:`Tokenizers` for the whole test session: loading a table takes seconds."""

from __future__ import annotations

import pytest

from omniroute_translator.tokens import Tokenizers


@pytest.fixture(scope="session")
def tokenizers() -> Tokenizers:
    return Tokenizers()
