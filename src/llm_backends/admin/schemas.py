"""Request and response bodies of the Admin API. Validation errors name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    TypeAdapter,
    model_validator,
)

from llm_backends.router.backends import backend_types

_http_url = TypeAdapter(HttpUrl)


def _check_backend_type(value: str) -> str:
    allowed = backend_types()
    if value not in allowed:
        raise ValueError(f"must be one of: {', '.join(allowed)}")
    return value


def _check_endpoint_url(value: str) -> str:
    """Must be an absolute http(s) URL; stored exactly as given (minus a trailing slash)."""
    url = _http_url.validate_python(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


def _check_model_name(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    if any(ord(c) < 32 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _check_no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it on every database alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


ModelName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_check_model_name)]
BackendType = Annotated[str, Field(max_length=32), AfterValidator(_check_backend_type)]
EndpointUrl = Annotated[
    str, Field(min_length=1, max_length=2048), AfterValidator(_check_endpoint_url)
]
BackendModel = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_check_no_nul)]
MaxTokens = Annotated[int, Field(gt=0, le=10_000_000)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TimeoutSeconds = Annotated[int, Field(gt=0, le=86_400)]
Priority = Annotated[int, Field(ge=0, le=1_000_000)]
Description = Annotated[str, Field(max_length=4000), AfterValidator(_check_no_nul)]
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
)


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


class BackendUpdate(BaseModel):
    """Partial update: only the fields present in the body change."""

    model_config = ConfigDict(extra="forbid")

    model_name: ModelName | None = None
    backend_type: BackendType | None = None
    endpoint_url: EndpointUrl | None = None
    backend_model: BackendModel | None = None
    enabled: bool | None = None
    max_tokens: MaxTokens | None = None
    temperature_default: Temperature | None = None
    timeout_seconds: TimeoutSeconds | None = None
    priority: Priority | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> BackendUpdate:
        for name in NOT_NULLABLE:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)


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
    avg_tokens_per_sec: float | None
    avg_latency_ms: float | None
    total_requests: int
    total_errors: int
    created_at: UtcTimestamp
    updated_at: UtcTimestamp


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
    requests: int = Field(ge=0, le=1_000_000_000)
    errors: int = Field(ge=0, le=1_000_000_000)
    latency_ms_sum: float = Field(ge=0)
    tokens_per_sec_sum: float = Field(default=0.0, ge=0)
    tokens_per_sec_samples: int = Field(default=0, ge=0)

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
