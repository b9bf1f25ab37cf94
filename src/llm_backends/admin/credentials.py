"""Backend credentials in the Admin API: the write-only `api_key` in, its ciphertext stored,
and the key itself out only to a caller with `llm_backends:secrets`."""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import SecretStr

from llm_backends.admin.schemas import (
    BackendCreate,
    BackendOut,
    BackendUpdate,
    BackendWithSecret,
)
from llm_backends.store.crypto import SecretBox, SecretUnreadable
from llm_backends.store.models import LLMBackend

log = structlog.get_logger("llm_backends.admin")


def storable(body: BackendCreate | BackendUpdate, box: SecretBox) -> dict[str, Any]:
    """The columns to write: the body's fields (all of a create, the given ones of an update)
    and, when `api_key` was given, its ciphertext (null removes it)."""
    fields = body.changes() if isinstance(body, BackendUpdate) else body.model_dump()
    if "api_key" in body.model_fields_set:
        key: SecretStr | None = body.api_key
        fields["api_key_encrypted"] = None if key is None else box.encrypt(key.get_secret_value())
    return fields


def reveal(row: LLMBackend, box: SecretBox) -> str | None:
    """The row's key in clear; None (and an error line) when it cannot be decrypted."""
    if row.api_key_encrypted is None:
        return None
    try:
        return box.decrypt(row.api_key_encrypted)
    except SecretUnreadable as error:
        log.error("api_key_unreadable", model=row.model_name, error=str(error))
        return None


def with_secret(row: LLMBackend, box: SecretBox) -> BackendWithSecret:
    base = BackendOut.model_validate(row).model_dump()
    return BackendWithSecret(**base, api_key=reveal(row, box))
