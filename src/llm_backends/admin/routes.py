"""The Admin API: CRUD over `llm_backends`, the unauthenticated lookup, and stats intake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from llm_backends.admin import credentials
from llm_backends.admin.auth import Principal, Scope, actor_of, optional_principal, require
from llm_backends.admin.errors import require_json_body
from llm_backends.admin.fleet import check_fleet
from llm_backends.admin.schemas import (
    BackendCreate,
    BackendOut,
    BackendUpdate,
    BackendWithSecret,
    BackendWritten,
    DeleteResult,
    ErrorBody,
    MetricsReport,
    MetricsResult,
    ToggleResult,
)
from llm_backends.admin.self_check import endpoint_warnings
from llm_backends.store import backends as store
from llm_backends.store.models import LLMBackend

router = APIRouter(prefix="/api/llm-backends", tags=["llm-backends"])

_AUTH_ERRORS = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}
_NOT_FOUND = {404: {"model": ErrorBody}}
_NOT_JSON = {415: {"model": ErrorBody}}


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(db_session)]
#: Ids are 32-bit on every database; larger numbers can't name a row.
BackendId = Annotated[int, Path(ge=1, le=2_147_483_647)]
Writer = Annotated[Principal, Depends(require(Scope.WRITE))]


#: Fields a fleet check reads: a PUT changing one of them is checked against the merged config.
_FLEET_INPUTS = frozenset(
    {"model_name", "backend_type", "endpoint_url", "endpoints", "max_concurrency", "fallbacks"}
)


def _not_found(backend_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"Backend not found: {backend_id}")


def _conflict(error: store.DuplicateModel) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(error))


def _changed(request: Request, *model_names: str | None) -> None:
    for model_name in model_names:
        request.app.state.config_changes.publish(model_name)


@router.get(
    "",
    response_model=list[BackendOut],
    dependencies=[Depends(require(Scope.READ))],
    responses=_AUTH_ERRORS,
)
async def list_backends(session: Session, enabled_only: bool = False) -> list[LLMBackend]:
    return list(await store.list_backends(session, enabled_only=enabled_only))


def _written(request: Request, row: LLMBackend) -> BackendWritten:
    written = BackendWritten.model_validate(row)
    written.warnings = endpoint_warnings(request, row.model_name, row.endpoint_url)
    return written


@router.post(
    "",
    response_model=BackendWritten,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_json_body)],
    responses={**_AUTH_ERRORS, 409: {"model": ErrorBody}, **_NOT_JSON},
)
async def create_backend(
    body: BackendCreate, session: Session, request: Request, caller: Writer
) -> BackendWritten:
    fields = credentials.storable(body, request.app.state.secret_box)
    await check_fleet(session, fields)
    try:
        row = await store.create_backend(session, fields, actor=actor_of(caller))
    except store.DuplicateModel as error:
        raise _conflict(error) from None
    _changed(request, row.model_name)
    return _written(request, row)


@router.post(
    "/metrics",
    response_model=MetricsResult,
    dependencies=[Depends(require(Scope.METRICS)), Depends(require_json_body)],
    responses={**_AUTH_ERRORS, **_NOT_JSON},
)
async def report_metrics(body: MetricsReport, session: Session) -> MetricsResult:
    batches = [store.ModelStatsBatch(**item.model_dump()) for item in body.stats]
    return MetricsResult(updated=await store.fold_stats(session, batches))


@router.get(
    "/model/{model_name:path}",
    response_model=None,
    responses={200: {"model": BackendWithSecret}, **_NOT_FOUND},
    summary="Service-to-service lookup of a model's config, enabled or not (no auth)",
    description="200 with the config (`enabled: false` for a disabled one, which routers "
    "treat as absent and answer with the default Ollama config); 404 when there is none. "
    "With a token that has `llm_backends:secrets`, the answer also holds the backend's "
    "`api_key` (a library router needs it); any other caller never sees it.",
)
async def get_backend_for_model(
    model_name: str,
    session: Session,
    request: Request,
    caller: Annotated[Principal | None, Depends(optional_principal)],
) -> BackendOut | BackendWithSecret:
    row = await store.get_backend_by_model(session, model_name)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Backend not found for model: {model_name}")
    if caller is not None and Scope.SECRETS in caller.scopes:
        return credentials.with_secret(row, request.app.state.secret_box)
    return BackendOut.model_validate(row)


@router.get(
    "/{backend_id}",
    response_model=BackendOut,
    dependencies=[Depends(require(Scope.READ))],
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
async def get_backend(backend_id: BackendId, session: Session) -> LLMBackend:
    row = await store.get_backend(session, backend_id)
    if row is None:
        raise _not_found(backend_id)
    return row


@router.put(
    "/{backend_id}",
    response_model=BackendWritten,
    dependencies=[Depends(require_json_body)],
    responses={**_AUTH_ERRORS, **_NOT_FOUND, 409: {"model": ErrorBody}, **_NOT_JSON},
)
async def update_backend(
    backend_id: BackendId, body: BackendUpdate, session: Session, request: Request, caller: Writer
) -> BackendWritten:
    changes = credentials.storable(body, request.app.state.secret_box)
    if changes.keys() & _FLEET_INPUTS:
        current = await store.get_backend(session, backend_id)
        if current is None:
            raise _not_found(backend_id)
        merged = {name: getattr(current, name) for name in _FLEET_INPUTS} | changes
        await check_fleet(session, merged, old_name=current.model_name)
    try:
        row = await store.update_backend(session, backend_id, changes, actor=actor_of(caller))
    except store.DuplicateModel as error:
        raise _conflict(error) from None
    if row is None:
        raise _not_found(backend_id)
    # A rename also frees the old name: then any cached model may be stale.
    _changed(request, None if "model_name" in changes else row.model_name)
    return _written(request, row)


@router.delete(
    "/{backend_id}",
    response_model=DeleteResult,
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
async def delete_backend(
    backend_id: BackendId, session: Session, request: Request, caller: Writer
) -> DeleteResult:
    model_name = await store.delete_backend(session, backend_id, actor=actor_of(caller))
    if model_name is None:
        raise _not_found(backend_id)
    _changed(request, model_name)
    return DeleteResult(message="Backend deleted successfully", id=backend_id)


@router.post(
    "/{backend_id}/toggle",
    response_model=ToggleResult,
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
async def toggle_backend(
    backend_id: BackendId, session: Session, request: Request, caller: Writer
) -> ToggleResult:
    row = await store.toggle_backend(session, backend_id, actor=actor_of(caller))
    if row is None:
        raise _not_found(backend_id)
    _changed(request, row.model_name)
    return ToggleResult(
        id=row.id,
        model_name=row.model_name,
        enabled=row.enabled,
        message="Backend enabled" if row.enabled else "Backend disabled",
    )
