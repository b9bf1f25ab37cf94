"""llm-backends: per-model routing of LLM requests to self-hosted inference servers.

from llm_backends import get_llm_router
result = await get_llm_router().generate(model="phi3:mini", prompt="What is 2+2?")
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_backends.router.core import LLMRouter, get_llm_router
    from llm_backends.router.errors import (
        BackendRequestError,
        BackendTimeout,
        BackendUnavailable,
        InvalidBackendResponse,
        LLMRouterError,
        ModelNotFound,
        StreamInterrupted,
    )

_EXPORTS = {
    "LLMRouter": "llm_backends.router.core",
    "get_llm_router": "llm_backends.router.core",
    "BackendRequestError": "llm_backends.router.errors",
    "BackendTimeout": "llm_backends.router.errors",
    "BackendUnavailable": "llm_backends.router.errors",
    "InvalidBackendResponse": "llm_backends.router.errors",
    "LLMRouterError": "llm_backends.router.errors",
    "ModelNotFound": "llm_backends.router.errors",
    "StreamInterrupted": "llm_backends.router.errors",
}

__all__ = [
    "BackendRequestError",
    "BackendTimeout",
    "BackendUnavailable",
    "InvalidBackendResponse",
    "LLMRouter",
    "LLMRouterError",
    "ModelNotFound",
    "StreamInterrupted",
    "get_llm_router",
]


def __getattr__(name: str) -> Any:
    """Import the library lazily, so the CLI and server start without loading it twice."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llm_backends' has no attribute {name!r}")
