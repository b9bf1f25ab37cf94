"""Module-scoped fixtures for tests against a real server process with fake inference
servers behind it (the HTTP CLI's and the admin page's). Import them into a conftest:
`from tests.fakes.operator_fixtures import default_ollama, fake_backend, server`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.common import FakeServer
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.fake_openai import OpenAIBehaviour
from tests.fakes.fixtures import running_fake_ollama, running_fake_openai
from tests.fakes.operator_server import OperatorServer, operator_server

__all__ = ["default_ollama", "fake_backend", "server"]


@pytest.fixture(scope="module")
def fake_backend() -> Iterator[FakeServer[OpenAIBehaviour]]:
    """An OpenAI-compatible server for the configs the tests create."""
    with running_fake_openai() as fake:
        yield fake


@pytest.fixture(scope="module")
def default_ollama() -> Iterator[FakeServer[OllamaBehaviour]]:
    """The server's default Ollama (OLLAMA_URL)."""
    with running_fake_ollama() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, default_ollama: FakeServer[OllamaBehaviour]
) -> Iterator[OperatorServer]:
    """`llm-backends serve` in its own state directory, shared by a test module."""
    with operator_server(tmp_path_factory.mktemp("operator"), default_ollama.url) as served:
        yield served
