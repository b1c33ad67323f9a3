"""``<think>…</think>`` reasoning that OpenAI-compatible models (DeepSeek-R1, Qwen, …) write into the text.

Only a think block at the very start of the text (after optional whitespace) counts: a literal ``<think>``
later in an answer (code, prose about tags) is content. The whitespace a model puts between ``</think>`` and
its answer is dropped, as providers that split reasoning themselves do.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ThinkSplitter", "split_think"]

_OPEN = "<think>"
_CLOSE = "</think>"


class _State(Enum):
    START = 1  # nothing decided yet: whitespace or a prefix of <think> is held back
    THINK = 2  # inside the block: text is reasoning, a possible prefix of </think> is held back
    AFTER = 3  # just after </think>: leading whitespace is dropped
    TEXT = 4  # plain content from here on


class ThinkSplitter:
    """Incremental splitter. ``feed`` takes the next piece of text (split anywhere, even inside a tag) and
    returns ``(reasoning, content)`` that can be released now; ``flush`` releases what was held back."""

    def __init__(self) -> None:
        self._state = _State.START
        self._held = ""

    def feed(self, text: str) -> tuple[str, str]:
        if self._state is _State.TEXT:
            return "", text
        reasoning: list[str] = []
        content: list[str] = []
        self._step(self._held + text, reasoning, content)
        return "".join(reasoning), "".join(content)

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        if self._state is _State.THINK:
            return held, ""  # an unclosed block: what was held is reasoning
        if self._state is _State.START:
            self._state = _State.TEXT
            return "", held
        return "", ""

    def _step(self, text: str, reasoning: list[str], content: list[str]) -> None:
        self._held = ""
        if self._state is _State.START:
            stripped = text.lstrip()
            if stripped.startswith(_OPEN):
                self._state = _State.THINK
                text = stripped[len(_OPEN) :]
            elif _OPEN.startswith(stripped):
                self._held = text
                return
            else:
                self._state = _State.TEXT
                content.append(text)
                return
        if self._state is _State.THINK:
            idx = text.find(_CLOSE)
            if idx < 0:
                keep = _partial_suffix(text, _CLOSE)
                reasoning.append(text[: len(text) - keep])
                self._held = text[len(text) - keep :]
                return
            reasoning.append(text[:idx])
            self._state = _State.AFTER
            text = text[idx + len(_CLOSE) :]
        if self._state is _State.AFTER:
            text = text.lstrip()
            if not text:
                return
            self._state = _State.TEXT
        content.append(text)


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def split_think(text: str) -> tuple[str, str]:
    """A whole text into ``(reasoning, content)``."""
    splitter = ThinkSplitter()
    r1, c1 = splitter.feed(text)
    r2, c2 = splitter.flush()
    return r1 + r2, c1 + c2
