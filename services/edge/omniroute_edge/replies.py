"""Recorded replies: what the edge sends is captured once and can be replayed byte for byte.

Idempotency and the exact cache both store a whole reply (status, headers, body; a stream is stored as the
bytes it sent, so a replay is still a proper stream in the client's format) in Redis, where every edge replica
sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from omniroute_core import jsonx

__all__ = ["Recorder", "StoredReply"]

Send = Callable[[dict[str, Any]], Any]

# headers that describe one particular delivery, not the reply itself
_NOT_REPLAYED = frozenset({b"x-request-id", b"x-omniroute-cache", b"x-omniroute-idempotent", b"content-length"})


@dataclass(slots=True)
class StoredReply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def encode(self) -> bytes:
        head = jsonx.dumps(
            {"s": self.status, "h": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers]}
        )
        return len(head).to_bytes(4, "big") + head + self.body

    @classmethod
    def decode(cls, data: bytes) -> StoredReply:
        size = int.from_bytes(data[:4], "big")
        head = jsonx.loads(data[4 : 4 + size])
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head["h"]]
        return cls(int(head["s"]), headers, data[4 + size :])

    async def send(self, send: Send, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": [*self.headers, *extra]})
        await send({"type": "http.response.body", "body": self.body})


@dataclass(slots=True)
class Recorder:
    """Wraps ASGI ``send``: forwards every message and keeps a copy of the reply up to ``limit`` bytes."""

    send: Send
    limit: int
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    overflow: bool = False
    complete: bool = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in _NOT_REPLAYED]
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            self.size += len(body)
            if self.size > self.limit:
                self.overflow = True
                self.parts.clear()
            elif body:
                self.parts.append(body)
            if not message.get("more_body", False):
                self.complete = True
        await self.send(message)

    def reply(self) -> StoredReply | None:
        """The whole reply, or None when it was cut short or too large to keep."""
        if not self.complete or self.overflow or not self.status:
            return None
        return StoredReply(self.status, self.headers, b"".join(self.parts))
