"""Timed transcript segments and the caption formats OpenAI's transcription endpoint offers (``srt``, ``vtt``,
and the ``segments`` of ``verbose_json``), built from the word timings Deepgram and AssemblyAI return. Pure.

A segment ends after a word that ends a sentence, at a pause of :data:`PAUSE_S` or more, or when it has
:data:`MAX_WORDS` words, so captions stay readable the way Whisper's segments are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_WORDS", "PAUSE_S", "Segment", "Word", "segments", "segments_json", "srt", "vtt"]

PAUSE_S = 1.0
MAX_WORDS = 24
_SENTENCE_END = (".", "?", "!", "…")


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: float  # seconds from the start of the audio
    end: float


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str


def segments(words: Iterable[Word], *, text: str = "", duration: float = 0.0) -> list[Segment]:
    """Words grouped into segments. Without word timings, a non-empty ``text`` is one segment over ``duration``."""
    out: list[Segment] = []
    current: list[Word] = []

    def close() -> None:
        if current:
            out.append(Segment(current[0].start, current[-1].end, " ".join(w.text for w in current)))
            current.clear()

    for word in words:
        if current and (word.start - current[-1].end >= PAUSE_S or len(current) >= MAX_WORDS):
            close()
        current.append(word)
        if word.text.endswith(_SENTENCE_END):
            close()
    close()
    if not out and text.strip():
        out.append(Segment(0.0, max(duration, 0.0), text.strip()))
    return out


def _clock(seconds: float, separator: str) -> str:
    ms = max(round(seconds * 1000), 0)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def srt(parts: Sequence[Segment]) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm`` times, a blank line after each cue."""
    return "".join(
        f"{n}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n\n" for n, s in enumerate(parts, 1)
    )


def vtt(parts: Sequence[Segment]) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues with ``HH:MM:SS.mmm`` times."""
    cues = "".join(f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n\n" for s in parts)
    return f"WEBVTT\n\n{cues}"


def segments_json(parts: Sequence[Segment]) -> list[dict[str, Any]]:
    """``verbose_json``'s ``segments``: the members OpenAI's shape has that timings can fill truthfully (no
    log-probabilities or compression ratios: the providers do not report them)."""
    return [
        {"id": n, "seek": 0, "start": s.start, "end": s.end, "text": s.text, "tokens": [], "temperature": 0.0}
        for n, s in enumerate(parts)
    ]
