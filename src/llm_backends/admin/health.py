"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready", responses={503: {"description": "The database is unreachable, or shutting down"}}
)
async def ready(request: Request) -> JSONResponse:
    if request.app.state.drain.draining:  # load balancers: stop sending here
        return JSONResponse({"status": "shutting down"}, status_code=503)
    async with request.app.state.sessions() as session:
        await session.execute(text("SELECT 1"))
    return JSONResponse({"status": "ready", "database": "ok"})
