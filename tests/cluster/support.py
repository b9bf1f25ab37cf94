"""Several real `llm-backends serve` processes over one store, and ways to watch a config
change reach each of them."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx

from llm_backends.store import migrate
from tests.conftest import _postgres, _postgres_url
from tests.fakes.common import FakeServer
from tests.fakes.served import ServedProcess, serve_process

MODEL = "phi3:mini"


@dataclass
class Replica:
    process: ServedProcess
    token: str

    @property
    def url(self) -> str:
        return self.process.url

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


def replica_env(database_url: str, token: str, ollama_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "ADMIN_API_TOKEN": token,
        "OLLAMA_URL": ollama_url,
        # Only a change notification (or the poll, where a test allows it) may refresh a
        # config: an hour-long TTL rules the TTL out as the cause.
        "LLM_ROUTER_CACHE_TTL": "3600",
        "LOG_LEVEL": "INFO",  # serve_process waits for uvicorn's INFO line
        **extra,
    }


@contextmanager
def replicas(
    database_url: str, ollama: FakeServer, count: int, **extra: str
) -> Iterator[list[Replica]]:
    token = "cluster-" + secrets.token_hex(8)
    with ExitStack() as stack:
        yield [
            Replica(stack.enter_context(serve_process(
                replica_env(database_url, token, ollama.url, **extra))), token)
            for _ in range(count)
        ]  # fmt: skip


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A database of its own, migrated (the replicas start with --migrate, a no-op then)."""
    name = f"llmb_cluster_{secrets.token_hex(4)}"
    asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    url = _postgres_url(name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def served_model(replica: Replica, ollama: FakeServer) -> str:
    """The `model` the replica's gateway sent to the (fake) Ollama for MODEL: the config's
    backend_model, or MODEL itself under the default config (disabled or deleted)."""
    response = httpx.post(
        f"{replica.url}/api/generate",
        json={"model": MODEL, "prompt": "hi", "stream": False},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return ollama.bodies[-1]["model"]


def seconds_until(check: Callable[[], bool], within: float) -> float:
    """Seconds until `check()` holds (polled every 5 ms); fails after `within` seconds."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not converged within {within} s")
        time.sleep(0.005)
    return time.monotonic() - started


async def seconds_until_async(check: Callable[[], Awaitable[bool]], within: float) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not converged within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def until_served(
    replica: Replica, ollama: FakeServer, expected: str, within: float = 5
) -> float:
    """`seconds_until` the replica serves `expected`, off the event loop."""
    return await asyncio.to_thread(
        seconds_until, lambda: served_model(replica, ollama) == expected, within
    )
