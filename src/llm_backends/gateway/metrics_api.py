"""`GET /metrics`: the gateway's Prometheus metrics (unauthenticated, as scrapers expect)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from llm_backends.gateway.flow import gateway_of

router = APIRouter(tags=["gateway: metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, latency, fallbacks, upstream errors, breakers",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    return Response(gateway_of(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
