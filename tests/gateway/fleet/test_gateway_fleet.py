"""The fleet through the gateway, with the clients users run: failover in both protocols,
whole and streamed; 429 + Retry-After in each protocol's shape; a client leaving the queue;
affinity by x-session-id; the default servers' models."""

from __future__ import annotations

import socket
import threading
from typing import Any

import ollama
import openai
import pytest

from llm_backends.gateway.catalog import default_server_models
from tests.fakes.common import Gate
from tests.fakes.fleet import Trio
from tests.gateway.conftest import GatewayServer

MODEL = "llama3:8b"


def fleet(gateway: GatewayServer, trio: Trio, **fields: Any) -> None:
    gateway.add(
        MODEL,
        "ollama",
        trio.urls[0],
        endpoints=[{"url": url} for url in trio.urls[1:]],
        **fields,
    )


def answered_by(trio: Trio, before: list[int]) -> str:
    """The server whose fake received one more request than `before`."""
    (index,) = [i for i, (a, b) in enumerate(zip(trio.counts(), before, strict=True)) if a > b]
    return trio.urls[index]


def test_a_dead_server_is_invisible_to_both_protocols(start_gateway, trio: Trio) -> None:
    trio.proxy.cut()
    gateway = start_gateway(health_check_interval=3600)  # the request itself meets the dead one
    fleet(gateway, trio)
    client = gateway.openai()
    for i in range(3):
        before = trio.counts()
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": f"hello {i}"}]
        )
        assert raw.parse().choices[0].message.content == "Hello from the fake server."
        assert raw.headers["x-llm-endpoint"] == answered_by(trio, before) != trio.urls[0]
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "stream"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "Hello from the fake server."
    )
    native = gateway.ollama()
    assert native.generate(model=MODEL, prompt="hi").response == "Hello from the fake server."
    pieces = [part.response for part in native.generate(model=MODEL, prompt="hi", stream=True)]
    assert "".join(pieces) == "Hello from the fake server."
    assert native.chat(model=MODEL, messages=[{"role": "user", "content": "x"}]).message.content
    completion = client.completions.create(model=MODEL, prompt="legacy")
    assert completion.choices[0].text == "Hello from the fake server."
    assert trio.counts()[0] == 0


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
def test_overflow_is_429_with_retry_after_in_the_client_protocol(
    start_gateway, trio: Trio, protocol: str
) -> None:
    gate = Gate()
    trio.fakes[1].configure(hold=gate)
    gateway = start_gateway(queue_max_waiting=0)
    gateway.add(MODEL, "ollama", trio.urls[1], max_concurrency=1)
    held = threading.Thread(
        target=lambda: gateway.http().post(
            "/api/generate", json={"model": MODEL, "prompt": "first", "stream": False}
        )
    )
    held.start()
    assert trio.fakes[1].state.wait_active(1)
    try:
        if protocol == "openai":
            with pytest.raises(openai.RateLimitError) as raised:
                gateway.openai().chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "second"}]
                )
            response = raised.value.response
            assert response.json()["error"]["code"] == "server_busy"
        else:
            with pytest.raises(ollama.ResponseError) as raised_ollama:
                gateway.ollama().generate(model=MODEL, prompt="second")
            assert raised_ollama.value.status_code == 429
            assert "max_concurrency=1" in raised_ollama.value.error
            response = gateway.http().post(
                "/api/generate", json={"model": MODEL, "prompt": "third", "stream": False}
            )
            assert response.status_code == 429 and set(response.json()) == {"error"}
        assert response.headers["retry-after"].isdigit()
    finally:
        gate.open()
        held.join(10)
    assert len(trio.fakes[1].bodies) == 1


def queued(gateway: GatewayServer, url: str) -> float:
    for line in gateway.metrics().splitlines():
        if line.startswith("llm_backend_server_queued{") and f'url="{url}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def until(check) -> None:  # type: ignore[no-untyped-def]
    """Poll observable state (the gateway's /metrics) until it holds, 10 s at most."""
    for _ in range(2000):
        if check():
            return
        threading.Event().wait(0.005)
    raise AssertionError("state not reached")


def test_a_client_leaving_the_queue_frees_its_place(start_gateway, trio: Trio) -> None:
    gate = Gate()
    fake, url = trio.fakes[1], trio.urls[1]
    fake.configure(hold=gate)
    gateway = start_gateway(queue_max_waiting=1)
    gateway.add(MODEL, "ollama", url, max_concurrency=1)
    body = b'{"model": "llama3:8b", "prompt": "p", "stream": false}'
    request = (
        b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    host, port = gateway.url.removeprefix("http://").split(":")
    first = socket.create_connection((host, int(port)))
    first.sendall(request)
    assert fake.state.wait_active(1)
    leaver = socket.create_connection((host, int(port)))
    leaver.sendall(request)
    until(lambda: queued(gateway, url) == 1)
    leaver.close()  # the client goes away while queued
    until(lambda: queued(gateway, url) == 0)
    stayer = socket.create_connection((host, int(port)))
    stayer.sendall(request)  # the queue of one has room again: no 429
    until(lambda: queued(gateway, url) == 1)
    gate.open()
    assert b"200 OK" in first.recv(65536)
    assert b"200 OK" in stayer.recv(65536)
    first.close()
    stayer.close()
    assert len(fake.bodies) == 2


def test_x_session_id_keeps_a_conversation_on_one_server(start_gateway, trio: Trio) -> None:
    gateway = start_gateway()
    fleet(gateway, trio)
    http = gateway.http()
    endpoints = set()
    for i in range(6):
        response = http.post(
            "/v1/completions",
            json={"model": MODEL, "prompt": f"turn {i}"},
            headers={"x-session-id": "conversation-42"},
        )
        assert response.status_code == 200
        endpoints.add(response.headers["x-llm-endpoint"])
    assert len(endpoints) == 1
    users = {
        http.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": f"{i}"}], "user": "u7"},
        ).headers["x-llm-endpoint"]
        for i in range(6)
    }
    assert len(users) == 1


async def test_default_servers_models_are_known_for_listings(
    make_gateway_router, trio: Trio
) -> None:
    for fake, models in zip(trio.fakes, [["a:1"], ["b:2", "c:3"], []], strict=True):
        fake.configure(models=models)
    router = make_gateway_router(",".join(trio.urls))
    await router.fleet.monitor.next_round()
    assert default_server_models(router) == [
        (trio.urls[0], "a:1"),
        (trio.urls[1], "b:2"),
        (trio.urls[1], "c:3"),
    ]


@pytest.fixture
async def make_gateway_router():  # type: ignore[no-untyped-def]
    from llm_backends.router.core import LLMRouter
    from tests.router.support import DictSource, router_settings

    routers: list[LLMRouter] = []

    def make(ollama_url: str) -> LLMRouter:
        router = LLMRouter(
            settings=router_settings(ollama_url=ollama_url),
            config_source=DictSource(),
            stats_sink=None,
        )
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.close()
