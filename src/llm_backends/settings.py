"""Every setting of llm-backends, read from the environment (or a `.env` file) in one place."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_FILE = "llm_backends.db"


def async_database_url(url: str) -> str:
    """Map the URL forms users write (`sqlite:///x.db`, `postgresql://...`) to async drivers.

    An explicit `+driver` is respected when it is an async one; sync drivers are swapped.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"DATABASE_URL is not a URL: {url!r}")
    dialect = scheme.split("+", 1)[0]
    if dialect == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if dialect in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"DATABASE_URL must be sqlite or postgresql, got {scheme!r}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Store
    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_FILE}",
        description="sqlite:///path or postgresql://user@host/db (the +driver forms work too).",
    )
    db_pool_size: int = Field(default=5, ge=1)
    db_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Connect/statement timeout: a dead database answers 503 fast.",
    )
    config_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds between reads of the config version: the safety net of LISTEN/NOTIFY on "
            "PostgreSQL, the whole change propagation on SQLite."
        ),
    )
    config_listen_url: str | None = Field(
        default=None,
        description=(
            "PostgreSQL URL of the LISTEN connection (default: DATABASE_URL). It must be a "
            "direct or session-pooled connection: PgBouncer transaction pooling drops LISTEN."
        ),
    )

    # Admin API
    admin_api_token: SecretStr | None = Field(
        default=None, description="Bootstrap bearer token with every permission."
    )
    token_file: Path = Field(
        default=Path(".llm-backends-token"),
        description="Where `llm-backends token ensure` writes the first local token.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger bodies get 413.")

    # Router (library mode)
    admin_api_url: str = "http://localhost:8080"
    ollama_url: str = "http://localhost:11434"
    llm_router_cache_ttl: float = Field(default=60.0, ge=0)
    llm_router_follow_changes: bool = Field(
        default=True,
        description=(
            "A library router follows the Admin API's change feed while it is in use, so a "
            "config change reaches it in well under a second (else: within the cache TTL)."
        ),
    )
    llm_router_fetch_timeout: float = Field(
        default=2.0, gt=0, description="Timeout of one config lookup at the Admin API."
    )
    llm_router_connect_timeout: float = Field(
        default=3.0,
        gt=0,
        description="TCP connect timeout to a backend (within the per-config timeout_seconds).",
    )
    max_backend_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest backend answer the router reads: a whole body, or one line/event of a "
            "stream. A larger one fails as an invalid response instead of exhausting memory."
        ),
    )
    breaker_failure_threshold: int = Field(default=3, ge=1)
    breaker_cooldown_seconds: float = Field(default=30.0, ge=0)
    metrics_report_interval: float = Field(
        default=10.0, gt=0, description="Seconds between batched stats reports to the Admin API."
    )

    # Defaults used when a model has no (enabled) config: the seed's default Ollama config.
    default_max_tokens: int = 2048
    default_temperature: float = 0.7
    default_timeout_seconds: float = 60.0

    # Gateway
    gateway_require_auth: bool = False

    # Server and logs
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_json: bool = True
    log_flush_interval: float = Field(
        default=0.2,
        ge=0,
        description=(
            "Seconds between flushes of INFO/DEBUG log lines (WARNING and above flush at "
            "once); 0 flushes every line. A flush per line costs a write(2) per request."
        ),
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        async_database_url(value)
        return value

    @property
    def async_database_url(self) -> str:
        return async_database_url(self.database_url)
