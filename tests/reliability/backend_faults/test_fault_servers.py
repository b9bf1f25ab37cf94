"""The fault knobs added for this suite do what their rows claim, seen from a plain HTTP
client: otherwise "headers then stall" could silently be "never answers", and the matrix
would prove less than it says."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from tests.fakes.common import FakeServer
from tests.fakes.raw_tcp import HUGE_LENGTH, raw_server

kinds = pytest.mark.parametrize("kind", ["ollama", "openai"])

#: How long a client here waits for bytes that must not come (the fakes stall for 30 s).
SHORT = 0.3


def fake_of(kind: str, fake_ollama: FakeServer, fake_openai: FakeServer) -> FakeServer:
    return fake_ollama if kind == "ollama" else fake_openai


def request(kind: str, stream: bool) -> tuple[str, dict[str, object]]:
    if kind == "ollama":
        return "/api/generate", {"model": "m", "prompt": "hi", "stream": stream}
    return "/v1/completions", {"model": "m", "prompt": "hi", "stream": stream}


@kinds
@pytest.mark.parametrize("stream", [False, True])
async def test_stall_headers_sends_the_headers_then_nothing(
    kind: str, stream: bool, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake = fake_of(kind, fake_ollama, fake_openai)
    fake.configure(stall_headers=30)
    path, body = request(kind, stream)
    async with httpx.AsyncClient(base_url=fake.url, timeout=httpx.Timeout(5, read=SHORT)) as http:
        async with http.stream("POST", path, json=body) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()
    assert await fake.aborted_within(5)


@kinds
async def test_stall_splits_a_whole_body_in_two(
    kind: str, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake = fake_of(kind, fake_ollama, fake_openai)
    fake.configure(stall=30)
    path, body = request(kind, stream=False)
    async with httpx.AsyncClient(base_url=fake.url, timeout=httpx.Timeout(5, read=SHORT)) as http:
        async with http.stream("POST", path, json=body) as response:
            declared = int(response.headers["content-length"])
            received = b""
            with pytest.raises(httpx.ReadTimeout):
                async for data in response.aiter_raw():
                    received += data
    assert 0 < len(received) < declared
    assert await fake.aborted_within(5)


@kinds
async def test_retry_after_comes_with_errors(
    kind: str, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake = fake_of(kind, fake_ollama, fake_openai)
    fake.configure(status=503, error="overloaded", retry_after="120")
    path, body = request(kind, stream=False)
    async with httpx.AsyncClient(base_url=fake.url) as http:
        response = await http.post(path, json=body)
    assert (response.status_code, response.headers["retry-after"]) == (503, "120")
    assert "overloaded" in response.text


@kinds
@pytest.mark.parametrize("status", [200, 500])
async def test_huge_sends_a_big_valid_body_chunked(
    kind: str, status: int, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake = fake_of(kind, fake_ollama, fake_openai)
    fake.configure(huge=300_000, status=status)
    path, body = request(kind, stream=False)
    async with httpx.AsyncClient(base_url=fake.url) as http:
        response = await http.post(path, json=body)
    assert response.status_code == status
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    assert len(response.content) >= 300_000
    orjson.loads(response.content)  # still one valid JSON object


@kinds
async def test_huge_makes_the_first_stream_line_big(
    kind: str, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake = fake_of(kind, fake_ollama, fake_openai)
    fake.configure(huge=300_000)
    path, body = request(kind, stream=True)
    async with httpx.AsyncClient(base_url=fake.url) as http:
        response = await http.post(path, json=body)
    lines = [line for line in response.text.splitlines() if line]
    assert len(lines[0]) >= 300_000 and all(len(line) < 1000 for line in lines[1:])


async def test_raw_silent_server_accepts_and_never_answers() -> None:
    with raw_server("silent") as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /api/generate HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(SHORT):
                await reader.read(1)
        assert (server.accepted, server.open) == (1, 1)
        writer.close()
        await writer.wait_closed()
        for _ in range(500):  # it closes its side once the client has gone (5 s at most)
            if not server.open:
                break
            await asyncio.sleep(0.01)
        assert server.open == 0


async def test_raw_declared_huge_server_announces_a_terabyte() -> None:
    with raw_server("declared_huge") as server:
        async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=SHORT)) as http:
            async with http.stream("POST", f"{server.url}/api/generate", json={}) as response:
                assert response.status_code == 200
                assert int(response.headers["content-length"]) == HUGE_LENGTH
