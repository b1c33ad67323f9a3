"""The edge's outermost ASGI app: the data plane is served before FastAPI is entered.

A request whose path and method match a data-plane route goes straight to that route's app (the relay), after
the IP filter as a plain call; everything else (``/health``, ``/api/*``, ``/dashboard/*``, a wrong method or a
trailing slash on a data-plane path, lifespan events) goes to the wrapped app, which holds the same routes, so a
request the dispatcher does not take is answered exactly as before (405, redirects, 404).

Why: measured under uvicorn on this machine, a raw ASGI app costs ~30 µs of CPU per request and the same app
mounted inside FastAPI ~86 µs (its error, exception and exit-stack middlewares and the Starlette router);
see ``bench/PROFILE.md``. Matching follows Starlette's rules for the routes we have: routes are tried in table
order, a path parameter is matched with Starlette's own compiled pattern and convertors, and ``HEAD`` is
allowed wherever ``GET`` is.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.convertors import Convertor
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DataPlaneDispatcher", "Gate", "Mount"]

# a mounted ASGI app (the relay types its scope as a plain dict, narrower than Starlette's MutableMapping)
App = Callable[..., Awaitable[None]]
# admits a request (True) or answers it itself (False): the IP filter
Gate = Callable[[Scope, Send], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Mount:
    """One data-plane route: its Starlette path pattern, its methods and the ASGI app that serves it."""

    path: str
    methods: Iterable[str]
    app: App


@dataclass(frozen=True, slots=True)
class _Compiled:
    exact: str | None  # the path itself when it has no parameters (a string compare, no regex)
    pattern: re.Pattern[str]
    convertors: Mapping[str, Convertor[Any]]
    methods: frozenset[str]
    app: App


class DataPlaneDispatcher:
    """``mounts`` are tried in order; the first whose path and method both match serves the request."""

    def __init__(self, fallback: ASGIApp, mounts: Iterable[Mount], gate: Gate) -> None:
        self._fallback = fallback
        self._gate = gate
        self._mounts = tuple(_compile(m) for m in mounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._match(scope)
            if found is not None:
                app, params = found
                if params:
                    scope["path_params"] = params
                if await self._gate(scope, send):
                    await app(scope, receive, send)
                return
        await self._fallback(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[App, dict[str, Any]] | None:
        # uvicorn runs the edge with an empty root_path, so scope["path"] is the route path
        path: str = scope["path"]
        method: str = scope["method"]
        for m in self._mounts:
            if m.exact is not None:
                if path != m.exact:
                    continue
                params: dict[str, Any] = {}
            else:
                match = m.pattern.match(path)
                if match is None:
                    continue
                params = {k: m.convertors[k].convert(v) for k, v in match.groupdict().items()}
            if method in m.methods:
                return m.app, params
            # like Starlette, a later route may still match fully; if none does, the fallback answers 405
        return None


def _compile(mount: Mount) -> _Compiled:
    pattern, _, convertors = compile_path(mount.path)
    methods = {m.upper() for m in mount.methods}
    if "GET" in methods:
        methods.add("HEAD")
    exact = mount.path if not convertors else None
    return _Compiled(exact, pattern, convertors, frozenset(methods), mount.app)
