"""SQLAlchemy tables. The schema itself is owned by the Alembic migrations in `migrations/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the Python side on every database (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class LLMBackend(Base):
    """Which inference server answers for one model name."""

    __tablename__ = "llm_backends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(255), unique=True)
    backend_type: Mapped[str] = mapped_column(String(32))
    endpoint_url: Mapped[str] = mapped_column(String(2048))
    backend_model: Mapped[str | None] = mapped_column(String(255), default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_tokens: Mapped[int] = mapped_column(Integer, default=2048)
    temperature_default: Mapped[float] = mapped_column(Float, default=0.7)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=60)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # Fleet (migration 0004): extra servers [{url, weight, max_concurrency}], the first
    # server's weight and limit, and fallback model names.
    endpoints: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    weight: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    max_concurrency: Mapped[int | None] = mapped_column(Integer, default=None)
    fallbacks: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    avg_tokens_per_sec: Mapped[float | None] = mapped_column(Float, default=None)
    avg_latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    total_requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total_errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: The backend's credential, Fernet-encrypted (store/secrets.py); never returned as is.
    api_key_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    #: The header that carries it (None: `Authorization: Bearer <key>`).
    api_key_header: Mapped[str | None] = mapped_column(String(255), default=None)

    @property
    def has_api_key(self) -> bool:
        return self.api_key_encrypted is not None


class ApiToken(Base):
    """A bearer token, stored as its SHA-256 (tokens are random, so no slow hash is needed)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(1024))  # space-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AuditEntry(Base):
    """One write to the config or the tokens: who, when, what, and the fields before/after.

    Written in the same transaction as the write itself; secrets appear only as markers.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_target", "target_type", "target_id"),
        Index("ix_audit_log_model_name", "target_model_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_token_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor_name: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer, default=None)
    target_model_name: Mapped[str | None] = mapped_column(String(255), default=None)
    target_name: Mapped[str | None] = mapped_column(String(255), default=None)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


__all__ = ["ApiToken", "AuditEntry", "Base", "LLMBackend", "UTCDateTime", "func", "utcnow"]
