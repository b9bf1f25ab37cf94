"""schemathesis against the app's own OpenAPI schema, over real HTTP: no 5xx, and every
response conforms to the schema. (Driven by hand: schemathesis' pytest plugin does not run
under pytest 9.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from llm_backends.store import migrate
from tests.conftest import LiveServer, server_starter


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'fuzz.db'}"
    migrate.upgrade(url)
    with server_starter(url) as start:
        yield start()


def fuzz(operation: Any, headers: dict[str, str], max_examples: int = 40) -> None:
    # A stats report may not count more errors than requests: a cross-field rule that JSON
    # Schema cannot express, so "schema-valid" bodies may rightly be refused there. The same
    # for a config's fleet fields: fallbacks must name existing configs without a cycle, and
    # a server may not be listed twice (422 naming the field).
    cross_field = operation.path.endswith("/metrics") or (
        operation.method.upper() in ("POST", "PUT")
        and operation.path in ("/api/llm-backends", "/api/llm-backends/{backend_id}")
    )
    excluded = [positive_data_acceptance] if cross_field else []

    @given(case=operation.as_strategy())
    @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        if operation.path.endswith("/changes"):
            _short_hold(case)
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    check()


def _short_hold(case: schemathesis.Case) -> None:
    """The change feed holds a poll with nothing new for `timeout` (default 30 s): keep a
    valid timeout short, so each example answers in a moment (invalid ones stay as drawn)."""
    query = dict(case.query or {})
    timeout = query.get("timeout", 30)
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0.2:
        query["timeout"] = 0.2
    case.query = query


def is_gateway(path: str) -> bool:
    """The gateway's operations are fuzzed against fake backends in tests/gateway."""
    return path.startswith("/v1/") or (path.startswith("/api/") and not path.startswith("/api/llm"))


def test_every_admin_operation_never_fails_and_matches_its_schema(
    fuzzed_server: LiveServer,
) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzzed_server.token}"}
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if is_gateway(operation.path):
            continue
        fuzz(operation, headers)
        tested.append(operation.label)
    assert "POST /api/llm-backends" in tested and "PUT /api/llm-backends/{backend_id}" in tested
