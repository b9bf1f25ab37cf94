"""The fakes speak the real protocols: the official `ollama` and `openai` clients accept them.

If a fake drifted from the wire format, these clients (written against the real servers)
would fail to parse it, and every test built on the fakes would prove less.
"""

from __future__ import annotations

import httpx
import ollama
import openai
import pytest

from tests.fakes.common import FakeServer
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.fake_openai import OpenAIBehaviour


async def test_ollama_client_generate_and_chat(fake_ollama: FakeServer[OllamaBehaviour]) -> None:
    fake_ollama.configure(reply="abc def", chunks=2, prompt_tokens=3)
    client = ollama.AsyncClient(host=fake_ollama.url)

    whole = await client.generate(model="phi3:mini", prompt="hi", stream=False)
    parts = [
        p
        async for p in await client.chat(
            model="phi3:mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    ]

    assert whole.response == "abc def"
    assert (whole.done, whole.done_reason, whole.eval_count, whole.prompt_eval_count) == (
        True,
        "stop",
        2,
        3,
    )
    assert "".join(p.message.content or "" for p in parts) == "abc def"
    assert parts[-1].done and not any(p.done for p in parts[:-1])


async def test_ollama_client_tags_version_and_errors(
    fake_ollama: FakeServer[OllamaBehaviour],
) -> None:
    client = ollama.AsyncClient(host=fake_ollama.url)
    fake_ollama.configure(enforce_models=True, models=["llama3.2:latest"])

    listed = await client.list()
    with pytest.raises(ollama.ResponseError) as caught:
        await client.generate(model="phi3:mini", prompt="hi")

    assert [m.model for m in listed.models] == ["llama3.2:latest"]
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'phi3:mini' not found"
    async with httpx.AsyncClient(base_url=fake_ollama.url) as http:
        version = (await http.get("/api/version")).json()  # the ollama client has no call
    assert version == {"version": fake_ollama.behaviour.version}


async def test_openai_client_completions_and_chat(
    fake_openai: FakeServer[OpenAIBehaviour],
) -> None:
    fake_openai.configure(reply="abc def", chunks=2, prompt_tokens=3, keepalive=1)
    client = openai.AsyncOpenAI(base_url=fake_openai.url + "/v1", api_key="unused")

    whole = await client.completions.create(model="m", prompt="hi", max_tokens=5)
    stream = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    events = [event async for event in stream]

    assert whole.choices[0].text == "abc def"
    assert whole.usage is not None and whole.usage.completion_tokens == 2
    text = "".join(e.choices[0].delta.content or "" for e in events if e.choices)
    assert text == "abc def"
    assert events[-1].usage is not None and events[-1].usage.prompt_tokens == 3
    await client.close()


@pytest.mark.parametrize("style", ["openai", "mlx", "vllm"])
async def test_openai_client_models_and_errors(
    fake_openai: FakeServer[OpenAIBehaviour], style: str
) -> None:
    fake_openai.configure(error_style=style)
    fake_openai.fail(400, "max_tokens must be positive")
    client = openai.AsyncOpenAI(base_url=fake_openai.url + "/v1", api_key="unused", max_retries=0)

    models = await client.models.list()
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )

    assert [m.id for m in models.data] == ["llama3.2:latest", "phi3:mini"]
    assert caught.value.status_code == 400
    # The client reads the message only from OpenAI's own shape; the body has it in all.
    assert "max_tokens must be positive" in str(caught.value.body)
    await client.close()


async def test_once_applies_to_the_next_request_only(
    fake_openai: FakeServer[OpenAIBehaviour],
) -> None:
    fake_openai.once(status=503, error="warming up")
    fake_openai.once(reply="second")
    client = openai.AsyncOpenAI(base_url=fake_openai.url + "/v1", api_key="unused", max_retries=0)

    with pytest.raises(openai.InternalServerError, match="warming up"):
        await client.completions.create(model="m", prompt="hi")
    second = await client.completions.create(model="m", prompt="hi")
    third = await client.completions.create(model="m", prompt="hi")

    assert second.choices[0].text == "second"
    assert third.choices[0].text == fake_openai.behaviour.reply
    assert len(fake_openai.requests) == 3
    await client.close()


def test_configure_rejects_unknown_fields(fake_ollama: FakeServer[OllamaBehaviour]) -> None:
    with pytest.raises(AttributeError, match="delya"):
        fake_ollama.configure(delya=1)
    with pytest.raises(AttributeError, match="stauts"):
        fake_ollama.once(stauts=500)
