"""The data-plane dispatcher: which requests it serves itself and which it leaves to the wrapped app."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute_edge.dispatch import DataPlaneDispatcher, Mount
from omniroute_edge.routes import ROUTES


class Recorder:
    """An ASGI app (or gate) that records the scopes it saw."""

    def __init__(self, name: str, seen: list[tuple[str, dict[str, Any]]]) -> None:
        self.name = name
        self.seen = seen

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append((self.name, dict(scope)))


def dispatcher(seen: list[tuple[str, dict[str, Any]]], *, admit: bool = True) -> DataPlaneDispatcher:
    async def gate(scope: Any, send: Any) -> bool:
        seen.append(("gate", dict(scope)))
        return admit

    mounts = [Mount(r.path, r.methods, Recorder(r.path, seen)) for r in ROUTES]
    mounts.append(Mount("/v1/listing", ("GET",), Recorder("listing", seen)))
    mounts.append(Mount("/v1/listing", ("POST",), Recorder("listing-post", seen)))
    return DataPlaneDispatcher(Recorder("fallback", seen), mounts, gate)


async def call(app: DataPlaneDispatcher, path: str, method: str = "POST", type_: str = "http") -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent by the recorders")

    await app({"type": type_, "path": path, "method": method, "headers": []}, receive, send)


@pytest.mark.parametrize(
    ("path", "served_by"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        # table order: count_tokens is listed before /v1/messages, and both are exact paths
        ("/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("/v1/messages", "/v1/messages"),
        ("/v1/api/chat", "/v1/api/chat"),
    ],
)
async def test_data_plane_paths_go_to_their_route_after_the_gate(path: str, served_by: str) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    await call(dispatcher(seen), path)
    assert [name for name, _ in seen] == ["gate", served_by]


async def test_path_parameters_are_converted_like_starlette() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    await call(dispatcher(seen), "/v1beta/models/gemini/gemini-2.5-flash:generateContent")
    name, scope = seen[-1]
    assert name == "/v1beta/models/{target:path}"
    assert scope["path_params"] == {"target": "gemini/gemini-2.5-flash:generateContent"}


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/health", "GET"),
        ("/api/keys", "POST"),
        ("/dashboard", "GET"),
        ("/v1/chat/completions", "GET"),  # wrong method: the app's router answers 405
        ("/v1/chat/completions/", "POST"),  # trailing slash: the app's router redirects
        ("/v1/chat", "POST"),
    ],
)
async def test_everything_else_goes_to_the_wrapped_app_without_the_gate(path: str, method: str) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    await call(dispatcher(seen), path, method)
    assert [name for name, _ in seen] == ["fallback"]


async def test_a_later_route_with_the_method_wins_and_head_follows_get() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    app = dispatcher(seen)
    await call(app, "/v1/listing", "POST")
    await call(app, "/v1/listing", "HEAD")
    assert [name for name, _ in seen] == ["gate", "listing-post", "gate", "listing"]


async def test_a_refused_request_stops_at_the_gate() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    await call(dispatcher(seen, admit=False), "/v1/chat/completions")
    assert [name for name, _ in seen] == ["gate"]


async def test_lifespan_goes_to_the_wrapped_app() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    await call(dispatcher(seen), "", type_="lifespan")
    assert [name for name, _ in seen] == ["fallback"]
