"""Bounded, load-balancer-friendly shutdown of a real `llm-backends serve` process.

SIGINT and SIGTERM end the process within the grace period counted from the signal; a
stream still open then ends with its protocol's error event; an idle process exits at once
(after SIGTERM's lame duck); during the lame duck `/ready` fails while requests still work.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from tests.fakes.common import FakeServer
from tests.serving.support import (
    DELAY,
    EXIT_MARGIN,
    GRACE,
    exit_within,
    last_event,
    served,
    server_env,
    stream_request,
)


@pytest.fixture
def slow_ollama(fake_ollama: FakeServer) -> FakeServer:
    """A default backend whose streams last ~100 s (0.2 s between 500 pieces)."""
    fake_ollama.configure(reply="x" * 500, chunks=500, stall=0.2)
    return fake_ollama


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_open_stream_ends_with_the_error_event_at_the_grace_period(
    tmp_path: Path, slow_ollama: FakeServer, sig: signal.Signals, protocol: str
) -> None:
    path, body = stream_request(protocol)
    with served(server_env(tmp_path, slow_ollama.url)) as process:
        assert process.process is not None
        with httpx.Client(base_url=process.url, timeout=30) as client:
            with client.stream("POST", path, json=body) as response:
                assert response.status_code == 200
                lines = response.iter_lines()
                received = [next(lines)]
                signalled = time.monotonic()
                process.process.send_signal(sig)
                received += list(lines)
                ended = time.monotonic() - signalled
        status, _ = exit_within(process, GRACE + EXIT_MARGIN)
        exited = time.monotonic() - signalled

    # The stream went on until the grace period, then got an explicit error, not a cut.
    assert GRACE - 0.5 < ended < GRACE + 1.0, ended
    assert len(received) > 3
    error = last_event(received)["error"]
    if protocol == "openai":
        assert isinstance(error, dict)
        assert error["code"] == "server_shutdown"
        assert "shutting down" in error["message"]
        assert "data: [DONE]" not in received
    else:
        assert isinstance(error, str) and "shutting down" in error
    assert exited < GRACE + EXIT_MARGIN
    assert status == 0
    assert any("shutdown_grace_expired" in line for line in process.output)
    assert "Traceback" not in "".join(process.output)


def test_an_idle_server_exits_at_once_on_sigint(tmp_path: Path, fake_ollama: FakeServer) -> None:
    with served(server_env(tmp_path, fake_ollama.url)) as process:
        assert process.process is not None
        process.process.send_signal(signal.SIGINT)
        status, took = exit_within(process, GRACE + EXIT_MARGIN)
    assert status == 0
    assert took < 1.5, took


def test_an_idle_server_exits_right_after_the_lame_duck_on_sigterm(
    tmp_path: Path, fake_ollama: FakeServer
) -> None:
    with served(server_env(tmp_path, fake_ollama.url)) as process:
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        status, took = exit_within(process, GRACE + EXIT_MARGIN)
    assert status == 0
    assert DELAY <= took < DELAY + 1.5, took


def test_during_the_lame_duck_ready_fails_and_requests_still_succeed(
    tmp_path: Path, fake_ollama: FakeServer
) -> None:
    env = server_env(tmp_path, fake_ollama.url, SHUTDOWN_DELAY_SECONDS="3")
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with served(env) as process:
        assert process.process is not None
        with httpx.Client(base_url=process.url, timeout=10) as kept_alive:
            assert kept_alive.get("/ready").status_code == 200
            process.process.send_signal(signal.SIGTERM)
            ready = kept_alive.get("/ready")
            while ready.status_code == 200:  # the signal is handled asynchronously
                ready = kept_alive.get("/ready")
            assert ready.status_code == 503
            assert ready.json() == {"status": "shutting down"}
            # New requests, on a kept-alive connection and on new ones, are still served.
            assert kept_alive.post("/v1/chat/completions", json=chat).status_code == 200
            fresh = httpx.post(f"{process.url}/api/chat", json={**chat, "stream": False})
            assert fresh.status_code == 200
            assert httpx.get(f"{process.url}/health").status_code == 200
        assert process.process.poll() is None  # still in its lame duck
        status, _ = exit_within(process, 3 + GRACE)
    assert status == 0


def test_a_request_in_flight_when_the_listener_closes_completes(
    tmp_path: Path, fake_ollama: FakeServer
) -> None:
    fake_ollama.configure(delay=1.5)
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    with served(server_env(tmp_path, fake_ollama.url)) as process:
        assert process.process is not None
        result: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: result.append(httpx.post(f"{process.url}/api/chat", json=chat))
        )
        request.start()
        while not fake_ollama.requests:  # the request reached the backend
            time.sleep(0.01)
        process.process.send_signal(signal.SIGINT)
        request.join(10)
        status, _ = exit_within(process, GRACE + EXIT_MARGIN)
    assert result[0].status_code == 200, result[0].text
    assert result[0].json()["message"]["content"] == fake_ollama.behaviour.reply
    assert status == 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream-before-first-chunk"])
@pytest.mark.parametrize("protocol", ["openai", "ollama"])
def test_a_request_still_unanswered_at_the_grace_period_gets_a_503_in_its_protocol(
    tmp_path: Path, fake_ollama: FakeServer, protocol: str, stream: bool
) -> None:
    fake_ollama.configure(delay=100)
    path, body = stream_request(protocol)
    body["stream"] = stream
    with served(server_env(tmp_path, fake_ollama.url)) as process:
        assert process.process is not None
        result: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: result.append(httpx.post(f"{process.url}{path}", json=body, timeout=30))
        )
        request.start()
        while not fake_ollama.requests:  # the request reached the backend
            time.sleep(0.01)
        signalled = time.monotonic()
        process.process.send_signal(signal.SIGINT)
        request.join(30)
        answered = time.monotonic() - signalled
        status, _ = exit_within(process, GRACE + EXIT_MARGIN)
    response = result[0]
    assert response.status_code == 503
    assert GRACE - 0.5 < answered < GRACE + 1.0, answered
    error = response.json()["error"]
    if protocol == "openai":
        assert error["code"] == "server_shutdown" and "shutting down" in error["message"]
    else:
        assert isinstance(error, str) and "shutting down" in error
    assert status == 0
    assert "Traceback" not in "".join(process.output)


def test_the_official_clients_see_the_shutdown_error_in_their_stream(
    tmp_path: Path, slow_ollama: FakeServer
) -> None:
    """What users run: the `openai` client raises APIError, the `ollama` client ResponseError,
    each with the message, instead of ending the stream as if it were complete."""
    with served(server_env(tmp_path, slow_ollama.url)) as process:
        assert process.process is not None
        openai_client = openai.OpenAI(base_url=f"{process.url}/v1", api_key="unused")
        ollama_client = ollama.Client(host=process.url)
        chat = openai_client.chat.completions.create(
            model="slow", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        generate = ollama_client.generate(model="slow", prompt="hi", stream=True)
        assert next(iter(chat)).choices[0].delta.role == "assistant"
        assert next(iter(generate)).done is False
        process.process.send_signal(signal.SIGTERM)
        with pytest.raises(openai.APIError, match="shutting down"):
            for _ in chat:
                pass
        with pytest.raises(ollama.ResponseError, match="shutting down"):
            for _ in generate:
                pass
        status, _ = exit_within(process, GRACE + EXIT_MARGIN)
    assert status == 0
