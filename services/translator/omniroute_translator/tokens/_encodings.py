"""The embedded BPE tables of ``bpe-openai`` (pinned): ``cl100k_base`` and ``o200k_base`` ship inside the wheel,
nothing is downloaded. Importing the package loads its tables (~2-4 s of CPU, ~190 MB), so it is imported on
first use or by :meth:`Tokenizers.warm`, never when this module is imported.

Counting goes straight to the Rust tokenizer (``bpe_openai._bindings``, typed by the wheel's ``.pyi``): its
``count`` builds no token list and has no length limit, where the tiktoken-compatible wrapper copies the rank
tables per encoding and refuses texts of a million characters. The tests check it against the wrapper's
``encode_ordinary`` and against published token ids.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from typing import Protocol

__all__ = ["ENCODINGS", "Tokenizers"]

ENCODINGS = ("cl100k_base", "o200k_base")


class _Counter(Protocol):
    def count(self, text: str) -> int: ...


class Tokenizers:
    """Text → token counts per encoding name. Thread-safe; one instance per process, built in ``main``."""

    def __init__(self) -> None:
        self._loaded: dict[str, _Counter] = {}
        self._lock = threading.Lock()

    def warm(self, names: Iterable[str] = ENCODINGS) -> None:
        """Load ``names`` now (the server calls this at start, in a worker thread)."""
        for name in names:
            self._get(name)

    def count(self, encoding: str, text: str) -> int:
        """The number of tokens of ``text`` as ordinary text (``<|endoftext|>`` is its characters, not special).
        Raises ``KeyError`` for an encoding that is not embedded."""
        return self._get(encoding).count(text) if text else 0

    def _get(self, name: str) -> _Counter:
        counter = self._loaded.get(name)
        if counter is None:
            if name not in ENCODINGS:
                raise KeyError(f"no embedded encoding {name!r} (have {', '.join(ENCODINGS)})")
            with self._lock:
                counter = self._loaded.get(name)
                if counter is None:
                    with warnings.catch_warnings():
                        # bpe-openai 0.1.4 reads its data with importlib.resources.open_binary (deprecated)
                        warnings.simplefilter("ignore", DeprecationWarning)
                        from bpe_openai import _bindings

                    counter = self._loaded[name] = _bindings.tokenizer_for_encoding(name)
        return counter
