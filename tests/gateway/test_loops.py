"""Loop protection: a config pointing back at the gateway costs one extra request and one
refusal (508 Loop Detected in the client's protocol), never a recursion."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from llm_backends import hops
from tests.fakes.served import serve_process
from tests.gateway.conftest import GatewayServer
from tests.gateway.test_metrics import samples

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def requests_seen(gateway: GatewayServer) -> dict[str, float]:
    """status -> generation requests the gateway answered with it."""
    return _statuses(gateway.metrics())


def loop_message(model: str, endpoint: str) -> str:
    return (
        f"the config of model '{model}' (endpoint_url {endpoint}) leads back to this "
        "gateway: set its endpoint_url to the inference server, not to llm-backends."
    )


@pytest.mark.parametrize(
    ("backend_type", "path", "body", "stream"),
    [
        ("openai", "/v1/chat/completions", CHAT, False),
        ("openai", "/v1/chat/completions", CHAT, True),
        ("ollama", "/api/chat", {**CHAT, "stream": False}, False),
        ("ollama", "/api/generate", {"prompt": "hi"}, True),
    ],
)
def test_a_config_pointing_at_the_gateway_is_refused_after_one_hop(
    gateway: GatewayServer, backend_type: str, path: str, body: dict, stream: bool
) -> None:
    gateway.add("loop", backend_type, gateway.url)
    sent = {**body, "model": "loop"}
    if backend_type == "openai":
        sent["stream"] = stream
    response = gateway.http().post(path, json=sent)

    assert response.status_code == 508, response.text
    error = response.json()["error"]
    message = error["message"] if isinstance(error, dict) else error
    # The inner refusal names the config; the outer answer names the endpoint it called.
    assert f"already passed through this llm-backends gateway (instance {hops.INSTANCE_ID})" in (
        message
    )
    assert loop_message("loop", gateway.url) in message
    assert f"endpoint='{gateway.url}'" in message
    if isinstance(error, dict):
        assert error["code"] == "loop_detected"
    # One request from the client, one forwarded to itself and refused: no second hop.
    assert requests_seen(gateway) == {"508": 2}


@pytest.mark.parametrize(
    ("backend_type", "path", "body"),
    [
        ("openai", "/v1/embeddings", {"input": ["hi"]}),
        ("ollama", "/v1/embeddings", {"input": "hi"}),
        ("ollama", "/api/embed", {"input": ["hi"]}),
        ("openai", "/api/embed", {"input": "hi"}),
        ("ollama", "/api/embeddings", {"prompt": "hi"}),
    ],
)
def test_an_embeddings_config_pointing_at_the_gateway_is_refused_after_one_hop(
    gateway: GatewayServer, backend_type: str, path: str, body: dict
) -> None:
    gateway.add("loop", backend_type, gateway.url)
    response = gateway.http().post(path, json={**body, "model": "loop"})

    assert response.status_code == 508, response.text
    error = response.json()["error"]
    message = error["message"] if isinstance(error, dict) else error
    assert f"already passed through this llm-backends gateway (instance {hops.INSTANCE_ID})" in (
        message
    )
    assert loop_message("loop", gateway.url) in message
    assert f"endpoint='{gateway.url}'" in message
    if path.startswith("/v1/"):
        assert error["code"] == "loop_detected"
    assert requests_seen(gateway) == {"508": 2}


@pytest.mark.parametrize("path", ["/v1/embeddings", "/api/embed"])
def test_an_embeddings_request_from_another_gateway_is_served_with_its_hops(
    gateway: GatewayServer, fake_ollama, path: str
) -> None:  # type: ignore[no-untyped-def]
    gateway.add("e", "ollama", fake_ollama.url)
    sent = {"model": "e", "input": ["hi"]}
    response = gateway.http().post(path, json=sent, headers={hops.HEADER: "abc"})
    assert response.status_code == 200, response.text
    assert fake_ollama.requests[-1].headers[hops.HEADER] == f"abc,{hops.INSTANCE_ID}"
    assert gateway.http().post(path, json=sent).status_code == 200
    assert fake_ollama.requests[-1].headers[hops.HEADER] == hops.INSTANCE_ID


def test_the_default_ollama_pointing_at_the_gateway_is_named(
    start_gateway, free_port_url: str
) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(ollama_url=free_port_url)
    response = gateway.http().post(
        "/api/chat",
        json={"model": "unconfigured", **CHAT, "stream": False},
        headers={hops.HEADER: f"someone-else,{hops.INSTANCE_ID}"},
    )
    assert response.status_code == 508
    message = response.json()["error"]
    assert "model 'unconfigured' has no enabled config here, and the default Ollama " in message
    assert f"(OLLAMA_URL={free_port_url}) leads back to this gateway" in message
    assert f"hops: someone-else -> {hops.INSTANCE_ID}." in message


def test_a_request_from_another_gateway_is_served(gateway: GatewayServer, fake_ollama) -> None:  # type: ignore[no-untyped-def]
    gateway.add("m", "ollama", fake_ollama.url)
    response = gateway.http().post(
        "/api/chat", json={"model": "m", **CHAT, "stream": False}, headers={hops.HEADER: "abc"}
    )
    assert response.status_code == 200
    assert fake_ollama.requests[-1].headers[hops.HEADER] == f"abc,{hops.INSTANCE_ID}"
    gateway.http().post("/api/chat", json={"model": "m", **CHAT, "stream": False})
    assert fake_ollama.requests[-1].headers[hops.HEADER] == hops.INSTANCE_ID


def test_too_many_hops_are_refused(gateway: GatewayServer) -> None:
    chain = ",".join(f"g{i}" for i in range(hops.MAX_HOPS))
    response = gateway.http().post(
        "/v1/chat/completions", json={"model": "m", **CHAT}, headers={hops.HEADER: chain}
    )
    assert response.status_code == 508
    assert f"passed through {hops.MAX_HOPS} gateways" in response.json()["error"]["message"]


def test_hop_header_parsing() -> None:
    assert hops.parse(None) == ()
    assert hops.parse(b" a, b,,c ") == ("a", "b", "c")
    assert hops.parse("x" * 100) == ("x" * 64,)
    assert hops.outgoing(("a",)) == f"a,{hops.INSTANCE_ID}"
    assert hops.outgoing() == hops.INSTANCE_ID


@pytest.mark.parametrize(
    ("url", "own", "expected"),
    [
        ("http://localhost:8080", [("127.0.0.1", 8080)], True),
        ("http://0.0.0.0:8080/", [("127.0.0.1", 8080)], True),
        ("http://127.0.0.1:8080/v1", [("0.0.0.0", 8080)], True),
        ("http://[::1]:8080", [("127.0.0.1", 8080)], True),
        ("http://gw.example:8080", [("127.0.0.1", 8080), ("gw.example", 8080)], True),
        ("http://localhost:8081", [("127.0.0.1", 8080)], False),
        ("http://localhost:11434", [("127.0.0.1", 8080)], False),
        ("http://192.168.10.167:8080", [("127.0.0.1", 8080)], False),
        ("http://localhost", [("127.0.0.1", 80)], True),
    ],
)
def test_points_at(url: str, own: list[tuple[str, int]], expected: bool) -> None:
    assert hops.points_at(url, own) is expected


@pytest.fixture
def free_port_url() -> str:
    from tests.fakes.server import free_port

    return f"http://127.0.0.1:{free_port()}"


def test_two_gateway_processes_pointing_at_each_other(tmp_path: Path) -> None:
    """A -> B -> A: A refuses the second visit; each process is asked once per hop."""
    token = "loop-test-token"
    env = {"ADMIN_API_TOKEN": token, "OLLAMA_URL": "http://127.0.0.1:9"}
    with (
        serve_process({**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}) as a,
        serve_process({**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}) as b,
    ):
        auth = {"Authorization": f"Bearer {token}"}
        for here, there, kind in ((a, b, "openai"), (b, a, "ollama")):
            created = httpx.post(
                f"{here.url}/api/llm-backends",
                json={"model_name": "m", "backend_type": kind, "endpoint_url": there.url},
                headers=auth,
            )
            assert created.status_code == 201, created.text
        response = httpx.post(
            f"{a.url}/v1/chat/completions", json={"model": "m", **CHAT}, timeout=30
        )
        assert response.status_code == 508, response.text
        message = response.json()["error"]["message"]
        # The refusal (by A, on the second visit) names A's config and the path taken...
        assert "already passed through this llm-backends gateway (instance " in message
        assert f"(endpoint_url {b.url}) leads back to this gateway" in message
        # ...and each gateway on the way names the endpoint it called.
        assert f"endpoint='{a.url}'" in message and f"endpoint='{b.url}'" in message
        counts_a = _statuses(httpx.get(f"{a.url}/metrics").text)
        counts_b = _statuses(httpx.get(f"{b.url}/metrics").text)
        assert (counts_a, counts_b) == ({"508": 2}, {"508": 1})


def _statuses(text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for (name, labels), count in samples(text).items():
        if name == "llm_gateway_requests_total":
            status = dict(labels)["status"]
            counts[status] = counts.get(status, 0) + count
    return counts
