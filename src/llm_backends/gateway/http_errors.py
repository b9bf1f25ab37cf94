"""Errors that happen before a gateway handler runs (unknown path 404, wrong method 405,
oversized body 413), answered in the protocol of the path: OpenAI's `{"error": {...}}` under
/v1/, Ollama's `{"error": "..."}` under /api/ (the Admin API's paths keep `{"detail": ...}`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from llm_backends.gateway.errors import GatewayError, Protocol, error_body
from llm_backends.gateway.paths import protocol_of_path

_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def message_for(status: int, method: str, path: str, detail: str, allow: str | None) -> str:
    if status == 404:
        return f"Not found: no gateway route {method} {path}"
    if status == 405:
        allowed = f" (allowed: {allow})" if allow else ""
        return f"Method not allowed: {method} {path}{allowed}"
    return detail


def protocol_error_body(protocol: Protocol, status: int, message: str) -> bytes:
    return error_body(protocol, GatewayError(status, message, code=_CODES.get(status)))


async def protocol_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    protocol = protocol_of_path(path)
    if protocol is None:
        return await http_exception_handler(request, exc)
    headers = dict(exc.headers or {})
    message = message_for(
        exc.status_code, request.method, path, str(exc.detail), headers.get("Allow")
    )
    return Response(
        protocol_error_body(protocol, exc.status_code, message),
        status_code=exc.status_code,
        media_type="application/json",
        headers=headers,
    )


def install_protocol_errors(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, protocol_http_exception)
