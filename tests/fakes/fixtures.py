"""Pytest fixtures for the fake inference servers and the real mlx_lm.server.

Import them into a conftest: `from tests.fakes.fixtures import *  # noqa: F403`.

- `fake_ollama` / `fake_openai`: a `FakeServer` (see common.py) reset for this test; the
  servers themselves (`fake_ollama_server` / `fake_openai_server`) live for the session.
- `mlx_server`: the real mlx_lm.server on a tiny model (session), skipped without mlx.

`running_fake_ollama()` / `running_fake_openai()` start further instances (context managers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.fakes import fake_ollama as ollama_app
from tests.fakes import fake_openai as openai_app
from tests.fakes.common import FakeServer, FakeState
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.fake_openai import OpenAIBehaviour
from tests.fakes.mlx_server import (
    MLXServer,
    mlx_unavailable_reason,
    start_mlx_server,
    stop_mlx_server,
)
from tests.fakes.server import serve

__all__ = [  # the fixtures, for `import *` in a conftest
    "fake_ollama",
    "fake_ollama_server",
    "fake_openai",
    "fake_openai_server",
    "mlx_server",
]


@contextmanager
def running_fake_ollama() -> Iterator[FakeServer[OllamaBehaviour]]:
    """A fake Ollama of your own, e.g. a second one: `with running_fake_ollama() as fake:`."""
    state = FakeState(OllamaBehaviour)
    with serve(ollama_app.create_app(state)) as server:
        yield FakeServer(server.url, state)


@contextmanager
def running_fake_openai() -> Iterator[FakeServer[OpenAIBehaviour]]:
    """A fake OpenAI-compatible server of your own (also stands in for mlx_lm.server)."""
    state = FakeState(OpenAIBehaviour)
    with serve(openai_app.create_app(state)) as server:
        yield FakeServer(server.url, state)


@pytest.fixture(scope="session")
def fake_ollama_server() -> Iterator[FakeServer[OllamaBehaviour]]:
    with running_fake_ollama() as fake:
        yield fake


@pytest.fixture
def fake_ollama(
    fake_ollama_server: FakeServer[OllamaBehaviour],
) -> Iterator[FakeServer[OllamaBehaviour]]:
    """A fake Ollama with default behaviour and no recorded requests."""
    fake_ollama_server.reset()
    yield fake_ollama_server
    fake_ollama_server.reset()


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeServer[OpenAIBehaviour]]:
    with running_fake_openai() as fake:
        yield fake


@pytest.fixture
def fake_openai(
    fake_openai_server: FakeServer[OpenAIBehaviour],
) -> Iterator[FakeServer[OpenAIBehaviour]]:
    """A fake OpenAI-compatible server with default behaviour and no recorded requests."""
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()


@pytest.fixture(scope="session")
def mlx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLXServer]:
    """The real mlx_lm.server serving a tiny random model; `.url`, `.model_path`."""
    reason = mlx_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = start_mlx_server(tmp_path_factory.mktemp("mlx"))
    try:
        yield server
    finally:
        stop_mlx_server(server)
