"""Routes of the admin page: `/` -> `/ui/`, the static assets, and the charts' data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from llm_backends.admin.auth import Scope as Permission
from llm_backends.admin.auth import require

STATIC_DIR = Path(__file__).parent / "static"
#: The page loads nothing from elsewhere and runs no inline script: an injected tag can't run.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]

router = APIRouter(tags=["ui"])


class PageFiles(StaticFiles):
    """StaticFiles with the page's security headers on every answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui", include_in_schema=False)
async def ui_without_slash() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get(
    "/api/llm-backends/timeseries",
    dependencies=[Depends(require(Permission.READ))],
    tags=["llm-backends"],
    summary="Per-minute requests, errors and mean latency of each configured model, last hour",
)
async def timeseries(
    request: Request, model: str | None = Query(default=None, max_length=255)
) -> dict[str, Any]:
    """This process's own counts (each replica keeps its own)."""
    return request.app.state.gateway.timeseries.snapshot(model)


def install_ui(app: FastAPI) -> None:
    """Add the page's routes; call before the Admin API's `/{backend_id}` routes."""
    app.include_router(router)
    app.mount("/ui", PageFiles(directory=STATIC_DIR, html=True), name="ui")
