"""The gateway's router reads configs from, and reports stats to, the store in this process:
no HTTP round trip to its own Admin API.

The store is read once per model per cache miss (the router's TTL, or the next request after
an Admin API write invalidated it), never per request. When the database is down the source
raises ConfigSourceUnavailable, and the router keeps serving what it had cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.admin.errors import DATABASE_ERRORS
from llm_backends.router.config_source import ConfigSourceUnavailable
from llm_backends.router.core import LLMRouter
from llm_backends.router.stats import ModelStats
from llm_backends.router.status import server_targets
from llm_backends.router.types import BackendConfig, ServerSpec, credential_headers
from llm_backends.store import backends as store
from llm_backends.store.crypto import SecretBox, SecretUnreadable
from llm_backends.store.models import LLMBackend

log = structlog.get_logger("llm_backends.gateway")


def _auth_headers(row: LLMBackend, box: SecretBox | None) -> tuple[tuple[str, str], ...]:
    if row.api_key_encrypted is None or box is None:
        return ()
    try:
        key = box.decrypt(row.api_key_encrypted)
    except SecretUnreadable as error:
        # Served without the key: the backend's own 401 then says what is wrong.
        log.error("api_key_unreadable", model=row.model_name, error=str(error))
        return ()
    return credential_headers(key, row.api_key_header)


def to_config(row: LLMBackend, box: SecretBox | None = None) -> BackendConfig:
    return BackendConfig(
        model_name=row.model_name,
        backend_type=row.backend_type,
        endpoint_url=row.endpoint_url,
        backend_model=row.backend_model,
        enabled=row.enabled,
        max_tokens=row.max_tokens,
        temperature_default=row.temperature_default,
        timeout_seconds=float(row.timeout_seconds),
        id=row.id,
        endpoints=tuple(ServerSpec.from_mapping(e) for e in row.endpoints or ()),
        weight=row.weight or 1,
        max_concurrency=row.max_concurrency,
        fallbacks=tuple(row.fallbacks or ()),
        auth_headers=_auth_headers(row, box),
    )


class StoreConfigSource:
    """A ConfigSource over the store; a lookup takes at most `timeout` seconds. A disabled
    config is returned as such (the route cache then uses the default, logging why)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        timeout: float,
        secret_box: SecretBox | None = None,
    ) -> None:
        self._sessions = sessions
        self._timeout = timeout
        self._box = secret_box

    async def get(self, model_name: str) -> BackendConfig | None:
        try:
            async with asyncio.timeout(self._timeout), self._sessions() as session:
                row = await store.get_backend_by_model(session, model_name)
        except DATABASE_ERRORS as error:
            raise ConfigSourceUnavailable(
                f"config store unavailable: {type(error).__name__}: {error}"
            ) from error
        return None if row is None else to_config(row, self._box)


class StoreStatsSink:
    """A StatsSink folding the router's batches into the store's running totals."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def report(self, batch: Sequence[ModelStats]) -> None:
        batches = [store.ModelStatsBatch(**stats.as_dict()) for stats in batch]
        async with self._sessions() as session:
            await store.fold_stats(session, batches)


def start_probes(router: LLMRouter, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Probe every server any enabled config names (read from the store each round)."""

    async def targets() -> list[tuple[str, str]]:
        async with sessions() as session:
            rows = await store.list_backends(session, enabled_only=True)
        return server_targets(to_config(row) for row in rows)

    router.fleet.monitor.targets = targets
    router.fleet.monitor.ensure_running()
