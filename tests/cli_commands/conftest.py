"""The HTTP CLI against a real server process (and fake inference servers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.common import FakeServer
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.fake_openai import OpenAIBehaviour
from tests.fakes.fixtures import running_fake_ollama, running_fake_openai
from tests.fakes.operator_server import OperatorServer, operator_server


@pytest.fixture(scope="module")
def fake_backend() -> Iterator[FakeServer[OpenAIBehaviour]]:
    with running_fake_openai() as fake:
        yield fake


@pytest.fixture(scope="module")
def default_ollama() -> Iterator[FakeServer[OllamaBehaviour]]:
    with running_fake_ollama() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, default_ollama: FakeServer[OllamaBehaviour]
) -> Iterator[OperatorServer]:
    with operator_server(tmp_path_factory.mktemp("cli"), default_ollama.url) as served:
        yield served
