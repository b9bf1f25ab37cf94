"""Errors in each protocol's own shape and with the right status: backend down 502, timeout
504, model unknown to its backend 404, bad bodies 400 naming the field; no secrets leak."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ollama
import openai
import orjson
import pytest

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

MODEL = "phi3:mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def openai_error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def ollama_error(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    return body["error"]


@pytest.mark.parametrize("stream", [False, True])
def test_backend_down_is_502_in_both_shapes(
    gateway: GatewayServer, refused_url: str, stream: bool
) -> None:
    gateway.add(MODEL, "openai", refused_url)
    http = gateway.http()
    response = http.post("/v1/chat/completions", json={**CHAT, "stream": stream})
    assert response.status_code == 502
    error = openai_error(response)
    assert error["code"] == "backend_unavailable"
    assert error["type"] == "api_error"
    assert MODEL in error["message"] and "cannot reach backend" in error["message"]
    assert response.headers["x-llm-backend"] == "openai"

    response = http.post("/api/chat", json={**CHAT, "stream": stream})
    assert response.status_code == 502
    assert "cannot reach backend" in ollama_error(response)


def test_clients_raise_their_own_errors_for_502(gateway: GatewayServer, refused_url: str) -> None:
    gateway.add(MODEL, "ollama", refused_url)
    with pytest.raises(openai.InternalServerError) as raised:
        gateway.openai().chat.completions.create(model=MODEL, messages=CHAT["messages"])
    assert raised.value.status_code == 502
    with pytest.raises(ollama.ResponseError) as from_ollama:
        gateway.ollama().generate(model=MODEL, prompt="hi")
    assert from_ollama.value.status_code == 502
    assert "cannot reach backend" in from_ollama.value.error


@pytest.mark.parametrize("stream", [False, True])
def test_timeout_is_504(gateway: GatewayServer, fake_ollama: FakeServer, stream: bool) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url, timeout_seconds=1)
    fake_ollama.configure(delay=30)  # ended early when the gateway gives up
    response = gateway.http().post(
        "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": stream}
    )
    assert response.status_code == 504
    assert "no answer within 1s" in ollama_error(response)
    assert fake_ollama.wait_for_abort()


def test_model_unknown_to_its_backend_is_404(
    gateway: GatewayServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "openai", fake_openai.url, backend_model="not-served")
    fake_openai.configure(enforce_models=True)
    with pytest.raises(openai.NotFoundError) as raised:
        gateway.openai().chat.completions.create(model=MODEL, messages=CHAT["messages"])
    assert raised.value.code == "model_not_found"
    response = gateway.http().post("/api/chat", json={**CHAT, "stream": False})
    assert response.status_code == 404
    assert "not-served" in ollama_error(response)


def test_backend_rejecting_the_request_is_400(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.fail(400, "invalid option")
    with pytest.raises(openai.BadRequestError) as raised:
        gateway.openai().chat.completions.create(model=MODEL, messages=CHAT["messages"])
    assert raised.value.code == "backend_request_error"
    assert "invalid option" in str(raised.value)


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"model": MODEL}, "messages", "messages: Field required"),
        ({"messages": CHAT["messages"]}, "model", "model: Field required"),
        ({**CHAT, "messages": []}, "messages", "messages: List should have at least 1 item"),
        (
            {**CHAT, "messages": [{"content": "x"}]},
            "messages.0.role",
            "messages.0.role: expected one of",
        ),
        (
            {**CHAT, "temperature": "hot"},
            "temperature",
            "temperature: Input should be a valid number",
        ),
        (
            {**CHAT, "temperature": 9},
            "temperature",
            "temperature: Input should be less than or equal to 2",
        ),
        ({**CHAT, "stream": "yes"}, "stream", "stream: Input should be a valid boolean"),
        ({**CHAT, "n": 0}, "n", "n: Input should be greater than or equal to 1"),
        (
            {**CHAT, "tools": [{"type": "function"}]},
            "tools.0",
            "tools.0: expected {'type': 'function', 'function': {'name', ...}}",
        ),
        (
            {**CHAT, "response_format": {"type": "yaml"}},
            "response_format.type",
            "response_format.type: 'yaml' is not one of text, json_object, json_schema",
        ),
        (
            {**CHAT, "tool_choice": "required"},
            "tool_choice",
            "tool_choice: set without any tools",
        ),
    ],
)
def test_bad_openai_bodies_are_400_naming_the_field(
    gateway: GatewayServer, body: dict[str, Any], param: str, message: str
) -> None:
    response = gateway.http().post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = openai_error(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].startswith(message)


def test_openai_client_sees_the_field_in_a_bad_request(gateway: GatewayServer) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        gateway.openai().completions.create(model=MODEL, prompt="hi", n=500)
    assert raised.value.param == "n"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/generate", {"prompt": "hi"}, "model: Field required"),
        ("/api/generate", {"model": ""}, "model: String should have at least 1 character"),
        ("/api/generate", {"model": "a\u0000b"}, "model: Value error, must not start or end"),
        (
            "/api/generate",
            {"model": MODEL, "options": {"temperature": "x"}},
            "options.temperature: ",
        ),
        (
            "/api/generate",
            {"model": MODEL, "images": [5]},
            "images.0: Input should be a valid string",
        ),
        (
            "/api/chat",
            {"model": MODEL, "messages": [{"role": "robot"}]},
            "messages.0.role: expected one of",
        ),
        ("/api/chat", {"model": MODEL, "format": 5}, "format: Input should be"),
        ("/api/chat", {"model": MODEL, "think": "max"}, "think: Input should be"),
        ("/api/show", {}, "model: Field required"),
    ],
)
def test_bad_ollama_bodies_are_400_naming_the_field(
    gateway: GatewayServer, path: str, body: dict[str, Any], message: str
) -> None:
    response = gateway.http().post(path, json=body)
    assert response.status_code == 400
    assert ollama_error(response).startswith(message)


BEYOND_64_BITS = 10**30


@pytest.mark.parametrize("field", ["top_k", "seed"])
def test_a_checked_integer_beyond_64_bits_is_400_naming_it(
    gateway: GatewayServer, fake_ollama: FakeServer, field: str
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    response = gateway.http().post(
        "/v1/completions", json={"model": MODEL, "prompt": "hi", field: BEYOND_64_BITS}
    )
    assert response.status_code == 400
    assert openai_error(response)["param"] == field


@pytest.mark.parametrize("stream", [False, True])
def test_a_translated_integer_beyond_64_bits_is_400_naming_it(
    gateway: GatewayServer, fake_openai: FakeServer, stream: bool
) -> None:
    """Ollama's options the gateway does not check are translated as they are; one that JSON
    can hold but no backend can take is the client's error (400), not an internal one."""
    gateway.add(MODEL, "openai", fake_openai.url)
    body = {**CHAT, "stream": stream, "options": {"seed": BEYOND_64_BITS}}
    response = gateway.http().post("/api/chat", json=body)
    assert response.status_code == 400
    assert ollama_error(response).startswith("seed: cannot be sent: Integer exceeds 64-bit")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b""])
def test_unparseable_bodies_are_400(gateway: GatewayServer, path: str, content: bytes) -> None:
    response = gateway.http().post(
        path, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    message = body["error"]["message"] if path.startswith("/v1") else body["error"]
    assert message.startswith("body: ")


def test_ollama_client_error_for_bad_request(gateway: GatewayServer) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        gateway.ollama().chat(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            options={"temperature": "hot"},
        )
    assert raised.value.status_code == 400
    assert raised.value.error.startswith("options.temperature: Input should be a valid number")


def test_error_messages_do_not_leak_credentials(gateway: GatewayServer, refused_url: str) -> None:
    """Endpoints may carry a key in their query string; error messages name the endpoint."""
    gateway.add(MODEL, "ollama", refused_url + "/?api_key=sk-hidden&token=s3cret")
    for path in ("/v1/chat/completions", "/api/chat"):
        response = gateway.http().post(path, json=CHAT)
        assert response.status_code == 502
        assert "sk-hidden" not in response.text and "s3cret" not in response.text
        assert "api_key=[redacted]" in response.text


def test_no_traceback_on_a_gateway_bug(
    gateway: GatewayServer, fake_ollama: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever breaks inside, the answer is a protocol error, never a bare 500 page."""
    from llm_backends.gateway import translate_openai

    def broken(*args: Any) -> Any:
        raise RuntimeError("secret internals")

    gateway.add(MODEL, "ollama", fake_ollama.url)
    monkeypatch.setattr(translate_openai, "completion_id", broken)
    response = gateway.http().post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 500
    error = openai_error(response)
    assert error["message"] == "internal gateway error"
    assert "secret internals" not in response.text


def test_body_size_limit_applies_to_the_gateway(start_gateway) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(max_body_bytes=1024)
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 2000}]}
    assert gateway.http().post("/v1/chat/completions", json=big).status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit trips while reading
        yield orjson.dumps(big)

    response = gateway.http().post("/api/chat", content=chunked())
    assert response.status_code == 413
    assert ollama_error(response) == "Request body too large"
