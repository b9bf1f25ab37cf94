"""The config version: every config write bumps it and logs which models changed.

`record_change(session, *model_names)` is THE call a write makes, inside its transaction and
before its commit. It bumps `config_version` (a one-row table: its row lock serialises the
writers, so versions commit in order and a reader never sees 7 before 6), logs one
`config_changes` row per model name, trims the log to the last `KEEP_VERSIONS` versions and,
on PostgreSQL, sends `NOTIFY llm_backends_changed` (delivered at commit, dropped on rollback).

Every version has at least one log row, so a reader of "changes since N" can tell a complete
answer (versions N+1..V all present) from one the trimming cut (a gap): see `ChangeLog.complete`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from llm_backends.store.models import Base, UTCDateTime, utcnow

#: The PostgreSQL channel of change notifications.
CHANNEL = "llm_backends_changed"
#: Versions kept in the log; a follower further behind than this reloads everything.
KEEP_VERSIONS = 1000
#: Trim the log once every this many versions (not on every write).
TRIM_EVERY = 50
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; stay well below.
MAX_PAYLOAD_BYTES = 7000

config_version = Table(
    "config_version",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

config_changes = Table(
    "config_changes",
    Base.metadata,
    Column("version", BigInteger, nullable=False, index=True),
    Column("model_name", String(255), nullable=True),
    Column("changed_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Change:
    """`model_name=None`: anything may have changed at this version."""

    version: int
    model_name: str | None


@dataclass(frozen=True, slots=True)
class ChangeLog:
    """The current version and the logged changes after some `since`."""

    since: int
    version: int
    changes: tuple[Change, ...]

    @property
    def complete(self) -> bool:
        """Every version in (since, version] is present: nothing was trimmed away (and the
        store was not reset below `since`)."""
        if self.version < self.since:
            return False
        present = {change.version for change in self.changes}
        return all(v in present for v in range(self.since + 1, self.version + 1))


async def record_change(session: AsyncSession, *model_names: str | None) -> int:
    """Bump the version for a write of these models (none: "anything"); returns the version.

    Call it in the write's transaction, before the commit; the caller commits.
    """
    bumped = await session.scalar(
        update(config_version)
        .where(config_version.c.id == 1)
        .values(version=config_version.c.version + 1)
        .returning(config_version.c.version)
    )
    if bumped is None:
        raise RuntimeError("config_version has no row: run `llm-backends migrate`")
    version = int(bumped)
    names = list(dict.fromkeys(model_names)) or [None]
    now = utcnow()
    await session.execute(
        insert(config_changes),
        [{"version": version, "model_name": name, "changed_at": now} for name in names],
    )
    if version % TRIM_EVERY == 0:
        await session.execute(
            delete(config_changes).where(config_changes.c.version <= version - KEEP_VERSIONS)
        )
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANNEL, encode_payload(version, names))))
    return version


def encode_payload(version: int, names: Sequence[str | None]) -> str:
    """`{"version": V, "models": [...]}`; without "models" (= anything) when it won't fit."""
    payload = orjson.dumps({"version": version, "models": list(names)})
    if len(payload) > MAX_PAYLOAD_BYTES or None in names:
        payload = orjson.dumps({"version": version})
    return payload.decode()


def decode_payload(payload: str) -> Change | tuple[Change, ...]:
    """The changes a notification names; one Change(model_name=None) when it names none.

    Raises ValueError on a payload this code did not write.
    """
    data = orjson.loads(payload)
    version = int(data["version"])
    models = data.get("models")
    if not models:
        return Change(version, None)
    return tuple(Change(version, str(name)) for name in models)


async def current_version(session: AsyncSession) -> int:
    return int(await session.scalar(select(config_version.c.version)) or 0)


async def changes_since(session: AsyncSession, since: int) -> ChangeLog:
    """What changed after version `since` (bounded by the log's size)."""
    version = await current_version(session)
    rows = (
        await session.execute(
            select(config_changes.c.version, config_changes.c.model_name)
            .where(config_changes.c.version > since)
            .order_by(config_changes.c.version, config_changes.c.model_name)
            .limit(KEEP_VERSIONS * 4)
        )
    ).all()
    if len(rows) >= KEEP_VERSIONS * 4:
        # Cut mid-version: answer "incomplete" (the reader reloads everything) instead.
        return ChangeLog(since=since, version=max(version, since + 1), changes=())
    changes = tuple(Change(int(row.version), row.model_name) for row in rows)
    # A write may commit between the two reads: its rows are whole, so count them in.
    if changes:
        version = max(version, changes[-1].version)
    return ChangeLog(since=since, version=version, changes=changes)
