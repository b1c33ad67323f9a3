"""The route table: every public data-plane path, as data (STYLE.md rule 8).

A route names the client's wire format, the operation and the scope a key needs. The edge has one relay for
all of them; nothing in it branches on a format.
"""

from __future__ import annotations

from dataclasses import dataclass

from omniroute.v1 import common_pb2

__all__ = ["ROUTES", "Route"]


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    format: common_pb2.Format.ValueType
    operation: common_pb2.Operation.ValueType
    scope: str
    methods: tuple[str, ...] = ("POST",)


ROUTES: tuple[Route, ...] = (
    Route("/v1/chat/completions", common_pb2.FORMAT_OPENAI_CHAT, common_pb2.OPERATION_CHAT, "chat"),
)
