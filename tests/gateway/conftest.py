"""Fixtures of the gateway tests: the real app on uvicorn, configs made through its Admin API,
fake backends (and the real mlx_lm.server), and the official `openai` / `ollama` clients.

The fake servers' fixtures come from the top conftest. The gateway tests run on SQLite only:
the store's queries are covered on both databases by the store and Admin API tests; here the
database is only where configs come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.conftest import LiveServer
from tests.fakes.server import free_port


@pytest.fixture(scope="session")
def database_url(sqlite_database: str) -> str:
    """SQLite only for the gateway (overrides the SQLite + PostgreSQL parametrization)."""
    return sqlite_database


@dataclass
class GatewayServer:
    """A running app and the clients tests talk to it with."""

    server: LiveServer
    _clients: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def _keep(self, client: Any) -> Any:
        self._clients.append(client)
        return client

    @property
    def admin(self) -> httpx.Client:
        """The Admin API with the bootstrap token."""
        return self._keep(self.server.client(self.server.token))

    def http(self, **kwargs: Any) -> httpx.Client:
        return self._keep(httpx.Client(base_url=self.url, timeout=30, **kwargs))

    def add(self, model: str, backend_type: str, endpoint_url: str, **fields: Any) -> dict:
        """Create a config through the Admin API (as an operator would)."""
        body = {
            "model_name": model,
            "backend_type": backend_type,
            "endpoint_url": endpoint_url,
            **fields,
        }
        response = self.admin.post("/api/llm-backends", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def openai(self, api_key: str = "unused", **kwargs: Any) -> openai.OpenAI:
        # No retries: a 502 must reach the test, not be retried with backoff sleeps.
        return self._keep(
            openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, **kwargs)
        )

    def async_openai(self, api_key: str = "unused") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0)

    def ollama(self, **kwargs: Any) -> ollama.Client:
        return self._keep(ollama.Client(host=self.url, timeout=30, **kwargs))

    def async_ollama(self, **kwargs: Any) -> ollama.AsyncClient:
        return ollama.AsyncClient(host=self.url, timeout=30, **kwargs)

    def metrics(self) -> str:
        response = self.http().get("/metrics")
        assert response.status_code == 200
        return response.text

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def start_gateway(start_server: Callable[..., LiveServer], fake_ollama: Any) -> Iterator[Any]:
    """`start_gateway(**settings)`: the app with OLLAMA_URL at the fake Ollama by default."""
    started: list[GatewayServer] = []

    def start(**overrides: Any) -> GatewayServer:
        overrides.setdefault("ollama_url", fake_ollama.url)
        gateway = GatewayServer(start_server(**overrides))
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.close()


@pytest.fixture
def gateway(start_gateway: Callable[..., GatewayServer]) -> GatewayServer:
    return start_gateway()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}"
