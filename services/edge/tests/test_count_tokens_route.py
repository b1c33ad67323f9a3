"""``/v1/messages/count_tokens`` is its own route (Anthropic format, count operation), matched before
``/v1/messages`` in the Starlette router the app builds from the table."""

from __future__ import annotations

from starlette.routing import Match
from starlette.routing import Route as StarletteRoute

from omniroute.v1 import common_pb2
from omniroute_edge.relay import Relay
from omniroute_edge.routes import ROUTES

from .test_bodies import target as _target


def _matching(path: str) -> Relay:
    """The relay the app would dispatch ``path`` to: the first full match in table order, as Starlette does."""
    for route in ROUTES:
        starlette = StarletteRoute(route.path, Relay(route), methods=list(route.methods))
        match, _ = starlette.matches({"type": "http", "path": path, "method": "POST"})
        if match is Match.FULL:
            assert isinstance(starlette.app, Relay)
            return starlette.app
    raise AssertionError(f"no route for {path}")


def test_count_tokens_has_its_own_route_ahead_of_messages() -> None:
    paths = [r.path for r in ROUTES]
    assert paths.index("/v1/messages/count_tokens") < paths.index("/v1/messages")
    count = _matching("/v1/messages/count_tokens").route
    assert (count.format, count.operation, count.scope) == (
        common_pb2.FORMAT_ANTHROPIC_MESSAGES,
        common_pb2.OPERATION_COUNT_TOKENS,
        "chat",
    )
    assert _matching("/v1/messages").route.operation == common_pb2.OPERATION_CHAT


def test_a_count_body_without_max_tokens_is_relayed_as_a_count() -> None:
    route = _matching("/v1/messages/count_tokens").route
    _, model, stream, operation = _target(route, b'{"model": "anthropic/claude-sonnet-4-5", "messages": []}', {})
    assert (model, stream, operation) == ("anthropic/claude-sonnet-4-5", False, common_pb2.OPERATION_COUNT_TOKENS)
