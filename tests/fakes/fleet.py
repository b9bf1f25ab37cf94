"""Fleet fixtures: three fake Ollamas (and a TCP proxy in front of the first, to kill and
revive it). Import them into a conftest or test module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.fakes.common import FakeServer
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.fixtures import running_fake_ollama, running_fake_openai
from tests.fakes.tcp_proxy import TcpProxy


@dataclass
class Trio:
    fakes: list[FakeServer[OllamaBehaviour]]
    #: In front of fakes[0]: `proxy.cut()` kills that server, `proxy.restore()` revives it.
    proxy: TcpProxy

    @property
    def urls(self) -> list[str]:
        """The servers as the router sees them (the first through the proxy)."""
        return [f"http://127.0.0.1:{self.proxy.port}", self.fakes[1].url, self.fakes[2].url]

    def counts(self) -> list[int]:
        return [len(fake.bodies) for fake in self.fakes]


@pytest.fixture(scope="session")
def trio_servers() -> Iterator[Trio]:
    with ExitStack() as stack:
        fakes = [stack.enter_context(running_fake_ollama()) for _ in range(3)]
        target = urlsplit(fakes[0].url)
        proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80).start()
        stack.callback(proxy.stop)
        yield Trio(fakes, proxy)


@pytest.fixture
def trio(trio_servers: Trio) -> Iterator[Trio]:
    for fake in trio_servers.fakes:
        fake.reset()
    trio_servers.proxy.restore()
    yield trio_servers
    for fake in trio_servers.fakes:
        fake.reset()
    trio_servers.proxy.restore()


@pytest.fixture(scope="session")
def openai_pair() -> Iterator[list[FakeServer]]:
    with running_fake_openai() as one, running_fake_openai() as two:
        yield [one, two]
