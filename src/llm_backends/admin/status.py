"""`GET /api/llm-backends/status`: the fleet's health and load, per config and per server."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from llm_backends.admin.auth import Scope, require
from llm_backends.admin.routes import Session
from llm_backends.admin.schemas import ErrorBody
from llm_backends.gateway.sources import to_config
from llm_backends.router.status import fleet_status
from llm_backends.store import backends as store

router = APIRouter(prefix="/api/llm-backends", tags=["llm-backends"])


class ServerStatus(BaseModel):
    url: str
    healthy: bool
    since: datetime | None
    last_error: str | None
    probe_latency_ms: float | None
    in_flight: int
    models: list[str]


class ConfigStatus(BaseModel):
    id: int
    model_name: str
    backend_type: str
    enabled: bool
    servers: list[ServerStatus]


class FleetStatus(BaseModel):
    configs: list[ConfigStatus]
    default_servers: list[ServerStatus]


@router.get(
    "/status",
    response_model=FleetStatus,
    dependencies=[Depends(require(Scope.READ))],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
    summary="Health (active probes) and requests in flight of every server",
)
async def status(session: Session, request: Request) -> dict[str, object]:
    rows = await store.list_backends(session)
    board = request.app.state.gateway.router.fleet
    return fleet_status(board, [to_config(row) for row in rows])
