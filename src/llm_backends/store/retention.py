"""Audit retention: entries older than `AUDIT_RETENTION_DAYS` are deleted at start and then
hourly, so the log of a long-lived installation does not grow for ever.

Every server process runs it; a delete by age is idempotent, so replicas need no coordination.
A failed round (the database is down) is logged and tried again at the next one.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.store import audit
from llm_backends.store.models import utcnow

log = structlog.get_logger("llm_backends.audit")

#: Seconds between rounds after the first.
INTERVAL = 3600.0


class AuditPruner:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        days: int,
        interval: float = INTERVAL,
    ) -> None:
        self._sessions = sessions
        self.days = days
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def prune_once(self) -> int:
        """Delete what is older than the retention now; how many entries went."""
        async with self._sessions() as session:
            removed = await audit.prune(session, utcnow() - timedelta(days=self.days))
        if removed:
            log.info("audit_pruned", removed=removed, retention_days=self.days)
        return removed

    async def _round(self) -> None:
        try:
            await self.prune_once()
        except Exception as error:  # the database is down: the next round tries again
            log.warning("audit_prune_failed", error=type(error).__name__)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._round()

    async def start(self) -> AuditPruner:
        """The first round now (before the server answers), then one every `interval`."""
        await self._round()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-pruner")
        return self

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def start_audit_pruner(
    sessions: async_sessionmaker[AsyncSession], days: int
) -> AuditPruner | None:
    """The running pruner, or None when entries are kept forever (`days` 0)."""
    return await AuditPruner(sessions, days).start() if days > 0 else None
