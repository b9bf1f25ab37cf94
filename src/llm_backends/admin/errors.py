"""Error responses of the Admin API: `{"detail": "..."}`, never a bare 500."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

log = structlog.get_logger("llm_backends.admin")

#: Raised by the drivers when the database is down, unreachable or too slow.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    OSError,
    TimeoutError,
)


def require_json_body(request: Request) -> None:
    """A FastAPI dependency: 415 for a body not sent as JSON (`curl -d` alone sends a form
    type; FastAPI reads neither that nor a body without a type as JSON), instead of "Input
    should be a valid dictionary"."""
    content_type = request.headers.get("content-type") or ""
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return
    raise HTTPException(
        415,
        f"Content-Type must be application/json, got {media or 'nothing'}: send the body "
        "as JSON with the header 'Content-Type: application/json' "
        "(curl: -H 'Content-Type: application/json')",
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """'backend_type: Value error, must be one of: ...; max_tokens: ...' — names every field."""
    return "; ".join(
        f"{_field_path(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in errors
    )


async def validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in error.errors()
    ]
    return JSONResponse(
        status_code=422, content={"detail": describe_validation_errors(errors), "errors": errors}
    )


async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.warning("database_unavailable", path=request.url.path, error=type(error).__name__)
    return JSONResponse(
        status_code=503,
        content={"detail": "Database unavailable: the config store cannot be reached, try again"},
        headers={"Retry-After": "5"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    for error_class in DATABASE_ERRORS:
        app.add_exception_handler(error_class, database_unavailable)


def validation_error_schema() -> dict[str, Any]:
    """The OpenAPI shape of our 422 body (replaces FastAPI's list-valued `detail`)."""
    return {
        "title": "HTTPValidationError",
        "type": "object",
        "required": ["detail"],
        "properties": {
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "loc": {
                            "type": "array",
                            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                        },
                        "msg": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
    }
