"""``X-OmniRoute-Progress: true``: ``event: progress`` frames interleaved into an SSE stream.

Every :data:`INTERVAL_S` seconds the client receives ``event: progress`` with the number of content events
streamed so far (``tokens``: providers stream about one token per event, so this is the count a client can show
without a tokenizer) and the elapsed milliseconds, and a last one with ``"done": true`` when the stream ends.
Frames are only inserted between whole SSE events, never inside one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from omniroute_core import jsonx

__all__ = ["INTERVAL_S", "Progress"]

INTERVAL_S = 2.0


class Progress:
    def __init__(self, clock: Callable[[], float] = time.monotonic, interval_s: float = INTERVAL_S) -> None:
        self._clock = clock
        self._interval = interval_s
        self._start = clock()
        self._last = self._start
        self.events = 0
        self.at_boundary = True

    def observe(self, data: bytes) -> None:
        """Count the data events in a batch of stream bytes (split anywhere)."""
        self.events += data.count(b"\ndata:") + (1 if data.startswith(b"data:") else 0)
        if data:
            self.at_boundary = data.endswith((b"\n\n", b"\r\n\r\n"))

    def wait_s(self) -> float:
        """Seconds until the next frame is due (0 when it is due now)."""
        return max(0.0, self._last + self._interval - self._clock())

    def frame(self, *, done: bool = False) -> bytes:
        now = self._clock()
        self._last = now
        payload: dict[str, object] = {"tokens": self.events, "elapsedMs": int((now - self._start) * 1000)}
        if done:
            payload["done"] = True
        return b"event: progress\ndata: " + jsonx.dumps(payload) + b"\n\n"
