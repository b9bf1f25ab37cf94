"""Typed router errors. Each message names the model, the backend and the endpoint."""

from __future__ import annotations


class LLMRouterError(Exception):
    """Base class of every error the router raises for a failed generation."""

    #: HTTP status a gateway answers with for this error.
    http_status: int = 502
    #: The backend that failed first when this error ended a fallback (auto), else None.
    fallback_from: str | None = None
    #: True when the model had no enabled config and the default Ollama was used.
    default_route: bool = False

    def __init__(
        self,
        reason: str,
        *,
        model: str,
        backend: str,
        endpoint: str,
        status_code: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.reason = reason
        self.model = model
        self.backend = backend
        self.endpoint = endpoint
        self.status_code = status_code
        #: The backend's Retry-After (with a 503 or 429), for a gateway to pass on.
        self.retry_after = retry_after
        super().__init__(f"{reason} (model={model!r}, backend={backend!r}, endpoint={endpoint!r})")


class BackendUnavailable(LLMRouterError):
    """Connection refused or reset, or the backend answered 5xx."""


class BackendTimeout(LLMRouterError):
    """No answer (or no next stream chunk) within the configured timeout."""

    http_status = 504


class ModelNotFound(LLMRouterError):
    """The backend does not know the model (HTTP 404 from it)."""

    http_status = 404


class InvalidBackendResponse(LLMRouterError):
    """The backend answered, but not in its protocol (bad JSON, missing fields, cut body)."""


class BackendRequestError(LLMRouterError):
    """The backend rejected the request itself (HTTP 400/422): retrying elsewhere won't help."""

    http_status = 400


class LoopDetected(BackendRequestError):
    """The backend is an llm-backends gateway this request already passed through (HTTP 508):
    a config points back at a gateway. Not a health failure, and no fallback hides it."""

    http_status = 508


class StreamInterrupted(LLMRouterError):
    """A stream failed after its first chunk was delivered: no fallback is possible then."""


class ServerBusy(LLMRouterError):
    """Every server of the model is at its `max_concurrency` and the wait in its queue ended
    (queue full, or longer than QUEUE_TIMEOUT_SECONDS): answered 429 with Retry-After."""

    http_status = 429
