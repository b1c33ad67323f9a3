"""Progress frames: counts of streamed data events, elapsed time, only between whole events."""

from __future__ import annotations

from omniroute_core import jsonx
from omniroute_edge.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_counts_data_events_split_anywhere_and_tracks_boundaries() -> None:
    clock = Clock()
    ticker = Progress(clock, interval_s=2.0)
    ticker.observe(b'data: {"a":1}\n\ndata: {"b"')
    first = (ticker.events, ticker.at_boundary)
    ticker.observe(b":2}\n\n")
    assert first == (2, False)
    assert (ticker.events, ticker.at_boundary) == (2, True)


def test_frames_are_due_every_interval_and_the_last_is_marked_done() -> None:
    clock = Clock()
    ticker = Progress(clock, interval_s=2.0)
    assert ticker.wait_s() == 2.0
    clock.now += 2.5
    assert ticker.wait_s() == 0.0
    ticker.observe(b"data: x\n\n")
    frame = ticker.frame()
    assert frame.startswith(b"event: progress\ndata: ")
    assert frame.endswith(b"\n\n")
    assert jsonx.loads(frame.split(b"data: ", 1)[1]) == {"tokens": 1, "elapsedMs": 2500}
    assert ticker.wait_s() == 2.0
    clock.now += 0.5
    assert jsonx.loads(ticker.frame(done=True).split(b"data: ", 1)[1]) == {"tokens": 1, "elapsedMs": 3000, "done": True}
