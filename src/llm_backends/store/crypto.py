"""Encryption at rest of backend credentials (a config's `api_key`), with Fernet.

The Fernet key is derived (HKDF-SHA256) from `SECRET_KEY`. Without one, a random key is
generated once into `<LLM_BACKENDS_HOME>/secret.key` (mode 600) and a warning is logged: a
laptop just works, and a fleet must share one `SECRET_KEY` (each replica would otherwise make
its own file and could not read the others' keys). The key is loaded on first use, so a
server whose configs carry no api_key never creates the file.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import structlog
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

log = structlog.get_logger("llm_backends.store")

_INFO = b"llm-backends api_key encryption v1"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: SECRET_KEY (or the key file) has changed."""


def derive_fernet_key(material: bytes) -> bytes:
    """32 bytes for Fernet from a secret of any length (HKDF, so a short SECRET_KEY is
    stretched and a long one compressed, both uniformly)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material)
    return base64.urlsafe_b64encode(key)


def read_or_create_key_file(path: Path) -> bytes:
    """The key material in `path`, created (mode 600, never overwritten) when missing."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    material = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as file:
        file.write(material + b"\n")
    log.warning(
        "secret_key_generated",
        path=str(path),
        hint="SECRET_KEY is not set: backend api_keys are encrypted with this generated key; "
        "set SECRET_KEY (the same on every replica) in production",
    )
    return material


class SecretBox:
    """Encrypts and decrypts short secrets; the key is loaded on first use."""

    def __init__(self, secret_key: SecretStr | None, key_file: Path) -> None:
        self._secret_key = secret_key
        self._key_file = key_file
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            if self._secret_key is not None and self._secret_key.get_secret_value():
                material = self._secret_key.get_secret_value().encode()
            else:
                material = read_or_create_key_file(self._key_file)
            self._fernet = Fernet(derive_fernet_key(material))
        return self._fernet

    def encrypt(self, plain: str) -> str:
        return self._cipher().encrypt(plain.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        try:
            return self._cipher().decrypt(stored.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as error:
            raise SecretUnreadable(
                "a stored api_key cannot be decrypted: SECRET_KEY (or the generated key "
                "file) differs from the one it was stored with; set the api_key again"
            ) from error
