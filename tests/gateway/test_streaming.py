"""Streams: fallback is invisible before the first byte; a failure after it ends the stream
with an explicit error event (never a clean-looking cut); a client that goes away cancels the
upstream request (the fake backend sees its answer abandoned)."""

from __future__ import annotations

import httpx
import ollama
import openai
import orjson
import pytest

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

MODEL = "phi3:mini"
REPLY = "Hello from the fake server."
MESSAGES = [{"role": "user", "content": "hi"}]


def sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


# -- fallback before the first byte --------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_auto_with_mlx_down_falls_back_to_ollama_transparently(
    gateway: GatewayServer, fake_ollama: FakeServer, refused_url: str, stream: bool
) -> None:
    gateway.add(MODEL, "auto", refused_url)
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, stream=stream
    )
    assert raw.headers["x-llm-backend"] == "ollama"
    assert raw.headers["x-llm-fallback-from"] == "mlx"
    answer = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    else:
        text = answer.choices[0].message.content
    assert text == REPLY
    assert fake_ollama.bodies[-1]["model"] == MODEL


def test_auto_with_mlx_failing_falls_back_for_an_ollama_client(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "auto", fake_openai.url)
    fake_openai.fail(503, "overloaded")
    parts = list(gateway.ollama().generate(model=MODEL, prompt="hi", stream=True))
    assert "".join(p.response or "" for p in parts) == REPLY
    assert len(fake_openai.bodies) == 1 and len(fake_ollama.bodies) == 1


# -- failures after the first byte ---------------------------------------------------------


@pytest.mark.parametrize("fault", ["error_after", "drop_after", "cut_after"])
def test_mid_stream_failure_ends_an_ollama_stream_with_an_error_line(
    gateway: GatewayServer, fake_openai: FakeServer, fault: str
) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    fake_openai.configure(**{fault: 1})
    response = gateway.http().post("/api/chat", json={"model": MODEL, "messages": MESSAGES})
    assert response.status_code == 200  # the headers were sent with the first chunk
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    assert lines[0]["done"] is False and lines[0]["message"]["content"]
    assert set(lines[-1]) == {"error"}
    assert not any(line.get("done") for line in lines)


@pytest.mark.parametrize("fault", ["error_after", "drop_after", "cut_after"])
def test_mid_stream_failure_ends_an_openai_stream_with_an_error_event(
    gateway: GatewayServer, fake_ollama: FakeServer, fault: str
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(**{fault: 1})
    response = gateway.http().post(
        "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES, "stream": True}
    )
    assert response.status_code == 200
    events = sse_events(response.text)
    assert "[DONE]" not in events
    last = orjson.loads(events[-1])
    assert set(last["error"]) == {"message", "type", "param", "code"}
    assert last["error"]["code"] in {"stream_interrupted", "invalid_backend_response"}


def test_clients_raise_on_a_mid_stream_failure(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(error_after=1, error="GPU fell over")
    stream = gateway.openai().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            received.append(chunk)
    assert received and "GPU fell over" in raised.value.message

    parts = []
    with pytest.raises(ollama.ResponseError) as from_ollama:
        for part in gateway.ollama().chat(model=MODEL, messages=MESSAGES, stream=True):
            parts.append(part)
    assert parts and "GPU fell over" in from_ollama.value.error


# -- client disconnects cancel the upstream request -----------------------------------------


def test_disconnect_mid_stream_cancels_the_upstream_stream(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(chunks=3, stall=30)  # first piece at once, then a long pause
    with gateway.http().stream(
        "POST", "/api/generate", json={"model": MODEL, "prompt": "hi"}
    ) as response:
        first = next(response.iter_lines())
        assert orjson.loads(first)["done"] is False
    # Leaving the block closed the connection mid-stream.
    assert fake_ollama.wait_for_abort(10), "the fake backend never saw the request abandoned"


def test_openai_client_closing_its_stream_cancels_the_upstream(
    gateway: GatewayServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    fake_openai.configure(chunks=3, stall=30)
    stream = gateway.openai().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert next(iter(stream)).choices[0].delta.content
    stream.close()
    assert fake_openai.wait_for_abort(10)


def test_disconnect_while_waiting_for_a_whole_answer_cancels_upstream(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(delay=30)  # the fake waits, and notes it if its client leaves
    client = httpx.Client(base_url=gateway.url, timeout=httpx.Timeout(30, read=0.5))
    with client, pytest.raises(httpx.ReadTimeout):
        client.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False})
    assert fake_ollama.wait_for_abort(10)


def test_disconnect_before_the_first_chunk_cancels_upstream(
    gateway: GatewayServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    fake_openai.configure(delay=30)
    client = httpx.Client(base_url=gateway.url, timeout=httpx.Timeout(30, read=0.5))
    with client, pytest.raises(httpx.ReadTimeout):
        client.post("/v1/completions", json={"model": MODEL, "prompt": "hi", "stream": True})
    assert fake_openai.wait_for_abort(10)


def test_gateway_keeps_serving_after_abandoned_requests(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.once(chunks=3, stall=30)
    with gateway.http().stream("POST", "/api/generate", json={"model": MODEL, "prompt": "hi"}) as r:
        next(r.iter_lines())
    assert fake_ollama.wait_for_abort(10)
    assert gateway.ollama().generate(model=MODEL, prompt="again").response == REPLY


def test_a_gateway_bug_mid_stream_still_ends_with_an_error_event(
    gateway: GatewayServer, fake_ollama: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_backends.gateway.streaming import OllamaEncoder

    original = OllamaEncoder.chunk

    def broken_after_first(self: OllamaEncoder, chunk: object) -> bytes:
        if getattr(self, "_first_at", None) is not None:
            raise RuntimeError("secret internals")
        return original(self, chunk)  # type: ignore[arg-type]

    gateway.add(MODEL, "ollama", fake_ollama.url)
    monkeypatch.setattr(OllamaEncoder, "chunk", broken_after_first)
    response = gateway.http().post("/api/generate", json={"model": MODEL, "prompt": "hi"})
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    assert lines[0]["done"] is False
    assert lines[-1] == {"error": "internal gateway error"}
    assert "secret internals" not in response.text
