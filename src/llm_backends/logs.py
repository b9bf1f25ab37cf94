"""structlog set-up: JSON lines (or console), level filtering that costs nothing when off,
and a last-line redaction of anything that looks like a secret.

The JSON path is on every request (`routing_llm_request`, `llm_request_completed`), so it
renders with orjson and writes bytes straight to stdout, not through the stdlib logging tree.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

_SECRET_KEYS = re.compile(r"token|authorization|api[-_]?key|password|secret", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"(?i:bearer)\s+\S+|llmb_[A-Za-z0-9_-]{8,}")
#: Keys that merely contain a secret-looking word.
_SAFE_KEYS = frozenset(
    {"event", "max_tokens", "prompt_tokens", "completion_tokens", "tokens_per_sec"}
)


def redact_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if key not in _SAFE_KEYS and _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
        elif isinstance(value, str) and ("llmb_" in value or "earer" in value):
            event[key] = _SECRET_VALUE.sub("[redacted]", value)
    return event


def _orjson_dumps(event: Any, **_kwargs: Any) -> bytes:
    return orjson.dumps(event, default=repr)


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    level_number = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(level=level_number, format="%(message)s")
    # Driver chatter (every statement, every thread hop) is not this service's story.
    for noisy in ("sqlalchemy", "aiosqlite", "asyncpg"):
        logging.getLogger(noisy).setLevel(max(level_number, logging.WARNING))
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    if json:
        processors.append(structlog.processors.JSONRenderer(serializer=_orjson_dumps))
        factory: Any = structlog.BytesLoggerFactory(sys.stdout.buffer)
    else:
        processors.append(structlog.dev.ConsoleRenderer())
        factory = structlog.PrintLoggerFactory(sys.stdout)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
