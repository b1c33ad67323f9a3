"""A disk spool for usage events that could not reach NATS, so an outage neither loses nor blocks them.

Events are appended to the current file as length-prefixed protobuf records. :meth:`Spool.take` closes the
current file and hands back every closed file, oldest first; the caller replays them and then deletes each one.
A crash mid-replay leaves the file in place, so it is replayed again on the next attempt or start: the events
carry their ids, and both JetStream (``Nats-Msg-Id``) and the usage store (``ON CONFLICT (event_id)``) drop the
copies, so a replay never double counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["Spool"]

_HEADER = 4


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._current: BinaryIO | None = None
        self._seq = 0

    def append(self, record: bytes) -> None:
        """Write one record and flush it to the OS (it survives a crash of this process)."""
        if self._current is None:
            self._seq += 1
            name = f"usage-{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.spool"
            self._current = (self.folder / name).open("ab")
        self._current.write(len(record).to_bytes(_HEADER, "big") + record)
        self._current.flush()

    def pending(self) -> bool:
        return self._current is not None or any(self.folder.glob("*.spool"))

    def take(self) -> list[Path]:
        """Close the file being written and return every spooled file, oldest first."""
        if self._current is not None:
            os.fsync(self._current.fileno())
            self._current.close()
            self._current = None
        return sorted(self.folder.glob("*.spool"))

    def close(self) -> None:
        if self._current is not None:
            os.fsync(self._current.fileno())
            self._current.close()
            self._current = None

    @staticmethod
    def records(path: Path) -> Iterator[bytes]:
        """The records of a spool file. A torn last record (a crash mid-write) is skipped."""
        data = path.read_bytes()
        offset = 0
        while offset + _HEADER <= len(data):
            size = int.from_bytes(data[offset : offset + _HEADER], "big")
            end = offset + _HEADER + size
            if end > len(data):
                return
            yield data[offset + _HEADER : end]
            offset = end
