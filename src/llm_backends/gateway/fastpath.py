"""A direct dispatch of the gateway's generation routes, in front of FastAPI.

The routes stay declared on FastAPI (OpenAPI, docs, and the path for anything unusual, such
as a HEAD or a trailing slash); an exact `POST /v1/chat/completions` (etc.) goes straight to
the same handler, wrapped only in the app's own middleware (the body-size limit). Measured on
FastAPI 0.165 with an instant backend, FastAPI's nested-router matching, dependency solving
and exception layers cost ~180 µs a request, and its outer stack (server-error and telemetry
middleware, an environment lookup per request) ~25 µs more. The handlers catch every error
themselves and answer in their protocol's shape, so nothing is lost by skipping them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


def direct_routes(
    routes: Iterable[BaseRoute],
    endpoints: Iterable[Handler],
    shortcuts: Mapping[Handler, Handler] | None = None,
) -> dict[tuple[str, str], Handler]:
    """(method, path) -> handler, for the declared routes whose endpoint is in `endpoints`.

    `shortcuts`: endpoint -> what to call instead on the direct path, e.g. the endpoint's
    body without its `async def` wrapper (one await level less on every resume).
    """
    wanted = set(endpoints)
    shortcuts = shortcuts or {}
    table: dict[tuple[str, str], Handler] = {}
    found: set[Handler] = set()
    for route in routes:
        if isinstance(route, APIRoute) and route.endpoint in wanted:
            found.add(route.endpoint)
            for method in route.methods:
                table[(method, route.path)] = shortcuts.get(route.endpoint, route.endpoint)
    missing = wanted - found
    if missing:
        raise ValueError(f"no declared route for {sorted(h.__name__ for h in missing)}")
    return table


class DirectDispatch:
    """An ASGI app over exact (method, path) matches; `handles(scope)` says which."""

    def __init__(self, routes: Mapping[tuple[str, str], Handler]) -> None:
        self._routes = dict(routes)

    def handles(self, scope: Scope) -> bool:
        return scope["type"] == "http" and (scope["method"], scope["path"]) in self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._routes[(scope["method"], scope["path"])]
        response = await handler(Request(scope, receive))
        await response(scope, receive, send)


class FastPathAPI(FastAPI):
    """FastAPI that hands requests its `direct` dispatch handles to that dispatch, wrapped in
    the middleware added with `add_middleware`, before FastAPI's own stack."""

    direct: DirectDispatch | None = None
    _direct_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self.direct
        if direct is not None and direct.handles(scope):
            if self._direct_stack is None:
                self._direct_stack = self._wrap_in_user_middleware(direct)
            scope["app"] = self
            await self._direct_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _wrap_in_user_middleware(self, app: ASGIApp) -> ASGIApp:
        for middleware in reversed(self.user_middleware):
            app = middleware.cls(app, *middleware.args, **middleware.kwargs)
        return app
