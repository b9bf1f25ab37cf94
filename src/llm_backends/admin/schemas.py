"""Request and response bodies of the Admin API. Validation errors name the field."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from llm_backends.router.backends import backend_types
from llm_backends.router.fleet import MAX_FALLBACKS

#: Model names: no leading/trailing white space, no control characters.
MODEL_NAME_PATTERN = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"
#: An absolute http(s) URL: a host name, IPv4 or [IPv6] host, an optional port, then anything.
_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
ENDPOINT_URL_PATTERN = (
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    rf"(?::{_PORT})?(?:[/?#][^\x00-\x20\x7f]*)?$"
)
NO_NUL_PATTERN = r"^[^\x00]*$"

_model_name_re = re.compile(MODEL_NAME_PATTERN)
_endpoint_url_re = re.compile(ENDPOINT_URL_PATTERN)


def _check_backend_type(value: str) -> str:
    allowed = backend_types()
    if value not in allowed:
        raise ValueError(f"must be one of: {', '.join(allowed)}")
    return value


def _check_endpoint_url(value: str) -> str:
    """An absolute http(s) URL, stored as given (minus a trailing slash)."""
    if not _endpoint_url_re.match(value):
        raise ValueError("must be an absolute http:// or https:// URL, like http://localhost:11434")
    return value.rstrip("/")


def _check_model_name(value: str) -> str:
    if not _model_name_re.match(value):
        raise ValueError("must not start or end with white space or contain control characters")
    return value


def _check_no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it on every database alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _documented(pattern: str) -> dict[str, Any]:
    return {"pattern": pattern}


ModelName = Annotated[
    str,
    Field(min_length=1, max_length=255, json_schema_extra=_documented(MODEL_NAME_PATTERN)),
    AfterValidator(_check_model_name),
]
BackendType = Annotated[
    str,
    Field(json_schema_extra={"enum": backend_types()}),
    AfterValidator(_check_backend_type),
]
EndpointUrl = Annotated[
    str,
    Field(min_length=1, max_length=2048, json_schema_extra=_documented(ENDPOINT_URL_PATTERN)),
    AfterValidator(_check_endpoint_url),
]
BackendModel = Annotated[
    str,
    Field(min_length=1, max_length=255, json_schema_extra=_documented(NO_NUL_PATTERN)),
    AfterValidator(_check_no_nul),
]
MaxTokens = Annotated[int, Field(gt=0, le=10_000_000)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TimeoutSeconds = Annotated[int, Field(gt=0, le=86_400)]
Priority = Annotated[int, Field(ge=0, le=1_000_000)]
Description = Annotated[
    str,
    Field(max_length=4000, json_schema_extra=_documented(NO_NUL_PATTERN)),
    AfterValidator(_check_no_nul),
]


def _check_header_value(value: SecretStr) -> SecretStr:
    # Sent in an HTTP header: no control characters (and never echoed in the error).
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value.get_secret_value()):
        raise ValueError("must not contain control characters or line breaks")
    return value


ApiKey = Annotated[
    SecretStr,
    Field(
        min_length=1,
        max_length=4096,
        description="Write-only: sent to the backend, never returned (see has_api_key).",
        json_schema_extra=_documented(r"^[^\x00-\x1f\x7f]+$"),
    ),
    AfterValidator(_check_header_value),
]
#: An HTTP header name (RFC 9110 token).
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
ApiKeyHeader = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=HEADER_NAME_PATTERN,
        description="The header that carries api_key, e.g. X-API-Key (sent as the bare key); "
        "null: `Authorization: Bearer <api_key>`.",
    ),
]
Weight = Annotated[int, Field(ge=1, le=1000, description="Relative share of requests.")]
MaxConcurrency = Annotated[
    int,
    Field(ge=1, le=100_000, description="Most of this model's requests in flight at the server."),
]
MAX_ENDPOINTS = 32


class ServerIn(BaseModel):
    """One more server of the same backend type serving the same model."""

    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl
    weight: Weight = 1
    max_concurrency: MaxConcurrency | None = None


Endpoints = Annotated[list[ServerIn], Field(max_length=MAX_ENDPOINTS)]
Fallbacks = Annotated[
    list[ModelName],
    Field(
        max_length=MAX_FALLBACKS,
        description="Other model names tried in order when every server of this one failed.",
    ),
]
UtcTimestamp = Annotated[
    datetime,
    PlainSerializer(lambda dt: dt.isoformat().replace("+00:00", "Z"), return_type=str),
]

#: Fields that may be omitted on create or update but never set to null.
NOT_NULLABLE = (
    "model_name",
    "backend_type",
    "endpoint_url",
    "enabled",
    "max_tokens",
    "temperature_default",
    "timeout_seconds",
    "priority",
    "endpoints",
    "weight",
    "fallbacks",
)


def check_servers(
    endpoint_url: str | None,
    endpoints: list[ServerIn] | None,
    backend_type: str | None,
    max_concurrency: int | None = None,
    fallbacks: list[str] | None = None,
) -> None:
    """Each server once; `auto` has one MLX server and falls back to the default Ollama,
    so it takes no extra servers, limit or fallbacks (they would be ignored)."""
    if backend_type == "auto":
        for name, value in (
            ("endpoints", endpoints),
            ("max_concurrency", max_concurrency),
            ("fallbacks", fallbacks),
        ):
            if value:
                raise ValueError(f"{name}: not supported with backend_type auto")
    if not endpoints:
        return
    seen = {endpoint_url} if endpoint_url else set()
    for server in endpoints:
        if server.url in seen:
            raise ValueError(f"endpoints: {server.url} is listed twice (endpoint_url included)")
        seen.add(server.url)


class BackendCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: ModelName
    backend_type: BackendType
    endpoint_url: EndpointUrl
    backend_model: BackendModel | None = Field(
        default=None,
        description="The id the inference server knows, when it differs from model_name. "
        "For mlx, leave null to use the model the server was started with.",
    )
    enabled: bool = True
    max_tokens: MaxTokens = 2048
    temperature_default: Temperature = 0.7
    timeout_seconds: TimeoutSeconds = 60
    priority: Priority = 100
    description: Description | None = None
    #: Excluded from dumps: it reaches the store only encrypted (admin/credentials.py).
    api_key: ApiKey | None = Field(default=None, exclude=True)
    api_key_header: ApiKeyHeader | None = None
    endpoints: Endpoints = Field(default_factory=list)
    weight: Weight = 1
    max_concurrency: MaxConcurrency | None = None
    fallbacks: Fallbacks = Field(default_factory=list)

    @model_validator(mode="after")
    def _servers(self) -> BackendCreate:
        check_servers(
            self.endpoint_url,
            self.endpoints,
            self.backend_type,
            self.max_concurrency,
            self.fallbacks,
        )
        return self


class BackendUpdate(BaseModel):
    """Partial update: only the fields present in the body change.

    Required fields may be left out but not set to null (the schema says so: no null type).
    """

    model_config = ConfigDict(extra="forbid")

    model_name: ModelName | SkipJsonSchema[None] = None
    backend_type: BackendType | SkipJsonSchema[None] = None
    endpoint_url: EndpointUrl | SkipJsonSchema[None] = None
    backend_model: BackendModel | None = None
    enabled: bool | SkipJsonSchema[None] = None
    max_tokens: MaxTokens | SkipJsonSchema[None] = None
    temperature_default: Temperature | SkipJsonSchema[None] = None
    timeout_seconds: TimeoutSeconds | SkipJsonSchema[None] = None
    priority: Priority | SkipJsonSchema[None] = None
    description: Description | None = None
    #: null removes the key; excluded from dumps like BackendCreate's.
    api_key: ApiKey | None = Field(default=None, exclude=True)
    api_key_header: ApiKeyHeader | None = None
    endpoints: Endpoints | SkipJsonSchema[None] = None
    weight: Weight | SkipJsonSchema[None] = None
    max_concurrency: MaxConcurrency | None = None
    fallbacks: Fallbacks | SkipJsonSchema[None] = None

    @field_validator(*NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)


class ServerOut(BaseModel):
    url: str
    weight: int = 1
    max_concurrency: int | None = None


class BackendOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    model_name: str
    backend_type: str
    endpoint_url: str
    backend_model: str | None
    enabled: bool
    max_tokens: int
    temperature_default: float
    timeout_seconds: int
    priority: int
    description: str | None
    endpoints: list[ServerOut]
    weight: int
    max_concurrency: int | None
    fallbacks: list[str]
    avg_tokens_per_sec: float | None
    avg_latency_ms: float | None
    total_requests: int
    total_errors: int
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    has_api_key: bool = False
    api_key_header: str | None = None

    @field_validator("endpoints", "fallbacks", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("weight", mode="before")
    @classmethod
    def _weight_default(cls, value: object) -> object:
        return 1 if value is None else value


class BackendWithSecret(BackendOut):
    """The model lookup: for a caller with `llm_backends:secrets` also the key itself."""

    api_key: str | None = Field(
        default=None, description="Present only for a token with llm_backends:secrets."
    )


class BackendWritten(BackendOut):
    """A created or updated config, with what the operator should know about it. Without
    warnings the body is exactly a BackendOut (what GET answers)."""

    warnings: list[str] = Field(
        default_factory=list,
        description="Present only when not empty: problems that did not stop the write, e.g. "
        "an endpoint_url that is this server's own address.",
    )

    # No return annotation: the JSON schema stays the model's own, not a bare "object".
    @model_serializer(mode="wrap")
    def _without_empty_warnings(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data: dict[str, Any] = handler(self)
        if not data.get("warnings"):
            data.pop("warnings", None)
        return data


class DeleteResult(BaseModel):
    message: str
    id: int


class ToggleResult(BaseModel):
    id: int
    model_name: str
    enabled: bool
    message: str


class ModelStatsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: ModelName
    endpoint: str | None = Field(
        default=None, max_length=2048, description="The server that answered (fleet)."
    )
    requests: int = Field(ge=0, le=1_000_000_000)
    errors: int = Field(ge=0, le=1_000_000_000)
    latency_ms_sum: float = Field(ge=0, le=1e15)
    tokens_per_sec_sum: float = Field(default=0.0, ge=0, le=1e15)
    tokens_per_sec_samples: int = Field(default=0, ge=0, le=1_000_000_000)

    @model_validator(mode="after")
    def _errors_within_requests(self) -> ModelStatsIn:
        if self.errors > self.requests:
            raise ValueError("errors may not exceed requests")
        return self


class MetricsReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stats: list[ModelStatsIn] = Field(max_length=10_000)


class MetricsResult(BaseModel):
    updated: int


class ErrorBody(BaseModel):
    detail: str
