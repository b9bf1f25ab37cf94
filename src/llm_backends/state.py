"""The local state directory's token file, shared by the CLI (which writes it) and a library
router (which reads it when ADMIN_API_TOKEN is unset, so its stats reach the table on a
laptop without any set-up)."""

from __future__ import annotations

import os
from pathlib import Path

from llm_backends.settings import Settings


def read_token_file(path: Path) -> str | None:
    """The token in `path`, or None when there is no readable, non-empty file."""
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeError):
        return None
    return token or None


def write_token_file(path: Path, token: str) -> None:
    """Write a token readable by its owner only (the directory too, when it is made here)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    os.chmod(path, 0o600)


def admin_token(settings: Settings) -> str | None:
    """The token a library router presents: ADMIN_API_TOKEN, else the local token file."""
    if settings.admin_api_token is not None and settings.admin_api_token.get_secret_value():
        return settings.admin_api_token.get_secret_value()
    return read_token_file(settings.token_file)
