"""Every setting of llm-backends, read from the environment (or a `.env` file) in one place."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_FILE = "llm_backends.db"
DEFAULT_TOKEN_FILE = "admin-token"
SECRET_KEY_FILE = "secret.key"


def default_home() -> Path:
    """The per-user data directory: `$XDG_DATA_HOME/llm-backends`, by default
    `~/.local/share/llm-backends` (`~/Library/Application Support/llm-backends` on macOS)."""
    return Path(platformdirs.user_data_dir("llm-backends", appauthor=False))


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


class LogLevelSetting(BaseSettings):
    """LOG_LEVEL alone: read even when other settings are invalid (start-up failures)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    log_level: str = "INFO"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Where things are: the default SQLite file, token file and secret key file.
    llm_backends_home: Path = Field(
        default_factory=default_home,
        description="State directory (default: the per-user data directory).",
    )

    # Store
    database_url: str = Field(
        default="",
        description="sqlite:///path or postgresql://user@host/db (the +driver forms work too); "
        f"default: sqlite in LLM_BACKENDS_HOME/{DEFAULT_SQLITE_FILE}.",
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
    audit_retention_days: int = Field(
        default=0,
        ge=0,
        le=36_500,
        description=(
            "Audit entries older than this many days are deleted, at start and hourly, by every "
            "server process; 0 keeps them forever."
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
        default=Path(),
        description="Where `llm-backends token ensure` writes the first local token "
        f"(default: LLM_BACKENDS_HOME/{DEFAULT_TOKEN_FILE}); a library router without "
        "ADMIN_API_TOKEN reads it.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Encrypts backends' api_key at rest. Unset: a key generated into "
        f"LLM_BACKENDS_HOME/{SECRET_KEY_FILE} (mode 600). Every replica needs the same one.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger bodies get 413.")

    # Router (library mode)
    admin_api_url: str = "http://localhost:8080"
    ollama_url: str = Field(
        default="http://localhost:11434",
        description="Default Ollama server(s), comma-separated: models without a config go "
        "to one that has them (by the health probes); `auto` falls back to the first.",
    )
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

    # Fleet (router/fleet.py, router/health.py)
    health_check_interval: float = Field(
        default=10.0, gt=0, description="Seconds between active health probes of each server."
    )
    health_check_timeout: float = Field(
        default=2.0, gt=0, description="Timeout of one health probe."
    )
    queue_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Longest wait for a place at a server at its max_concurrency (then 429).",
    )
    queue_max_waiting: int = Field(
        default=100, ge=0, description="Requests that may wait per server and model (then 429)."
    )
    conversation_affinity: bool = Field(
        default=True,
        description="Send a conversation's requests to the same server of a fleet.",
    )

    # Defaults used when a model has no (enabled) config: the seed's default Ollama config.
    max_fanout_calls: int = Field(
        default=8,
        ge=1,
        description="n > 1 to a backend that ignores n: served by n concurrent calls, up to this.",
    )
    default_max_tokens: int = 2048
    default_temperature: float = 0.7
    default_timeout_seconds: float = 60.0

    # Gateway
    gateway_require_auth: bool = False
    discovery_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Timeout of a discovery call to a backend (/api/show, /api/ps, model lists).",
    )
    discovery_cache_ttl: float = Field(
        default=10.0,
        ge=0,
        description="Seconds the default Ollama's model list (in /api/tags, /v1/models) is reused.",
    )

    # Server and logs
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(
        default=1, ge=1, description="Server processes sharing the port (`serve --workers`)."
    )
    shutdown_delay_seconds: float = Field(
        default=2.0,
        ge=0,
        description=(
            "Lame duck after SIGTERM: /ready answers 503 while requests are still served, so "
            "load balancers stop sending before the listener closes. None after SIGINT."
        ),
    )
    shutdown_grace_seconds: float = Field(
        default=25.0,
        ge=0,
        description=(
            "Seconds from the signal until requests still running are ended (a stream with "
            "its protocol's error event) and the process exits."
        ),
    )
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
        if value:
            async_database_url(value)
        return value

    @model_validator(mode="after")
    def _place_state_files(self) -> Settings:
        """Unset file locations default to the state directory (explicit values win)."""
        home = self.llm_backends_home.expanduser()
        self.llm_backends_home = home
        if not self.database_url:
            self.database_url = f"sqlite:///{home / DEFAULT_SQLITE_FILE}"
        if self.token_file == Path():
            self.token_file = home / DEFAULT_TOKEN_FILE
        return self

    @property
    def secret_key_file(self) -> Path:
        return self.llm_backends_home / SECRET_KEY_FILE

    @property
    def ollama_urls(self) -> tuple[str, ...]:
        """OLLAMA_URL split on commas, without trailing slashes or empty items."""
        urls = tuple(u.strip().rstrip("/") for u in self.ollama_url.split(",") if u.strip())
        return urls or ("http://localhost:11434",)

    @property
    def async_database_url(self) -> str:
        return async_database_url(self.database_url)
