"""Mapping a backend's non-200 answer to a router error, and what of it is passed on."""

from __future__ import annotations

import pytest

from llm_backends.router.backends._http import status_error
from llm_backends.router.errors import BackendUnavailable, ModelNotFound
from tests.router.backends.helpers import make_config

CONFIG = make_config("http://127.0.0.1:9", "ollama")
HTTP_DATE = "Wed, 21 Oct 2026 07:28:00 GMT"


@pytest.mark.parametrize(
    ("status", "header", "passed_on"),
    [
        (503, "120", "120"),
        (429, HTTP_DATE, HTTP_DATE),
        (500, "120", None),  # Retry-After means something with 503 and 429 only
        (503, None, None),
        (503, "<script>alert(1)</script>", None),  # not seconds, not a date
        (503, "9" * 100, None),
    ],
)
def test_retry_after_is_kept_from_503_and_429_only_when_well_formed(
    status: int, header: str | None, passed_on: str | None
) -> None:
    error = status_error(status, b'{"error": "overloaded"}', CONFIG, "ollama", header)
    assert type(error) is BackendUnavailable
    assert error.reason == f"HTTP {status}: overloaded"
    assert error.retry_after == passed_on


def test_other_statuses_carry_no_retry_after() -> None:
    error = status_error(404, b'{"error": "model not found"}', CONFIG, "ollama", "120")
    assert type(error) is ModelNotFound and error.retry_after is None
