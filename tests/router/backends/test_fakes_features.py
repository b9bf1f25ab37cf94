"""The fakes' features as the official clients parse them: tool calls, reasoning, n,
logprobs, refusals. (Checked first, so the gateway tests built on the fakes prove something.)"""

from __future__ import annotations

import json

import httpx
import ollama
import openai

from tests.fakes.common import FakeServer
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.fake_openai import OpenAIBehaviour

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
HI = [{"role": "user", "content": "hi"}]


def test_ollama_client_parses_the_fake_ollamas_tool_calls_and_thinking(
    fake_ollama: FakeServer[OllamaBehaviour],
) -> None:
    fake_ollama.configure(tool_calls=[CALL])
    client = ollama.Client(host=fake_ollama.url)
    whole = client.chat(model="m", messages=HI, tools=[TOOL], think=True, stream=False)
    assert whole.message.tool_calls is not None
    assert whole.message.tool_calls[0].function.name == "get_weather"
    assert whole.message.tool_calls[0].function.arguments == {"city": "Paris"}
    assert whole.message.thinking == "Let me think."
    parts = list(client.chat(model="m", messages=HI, tools=[TOOL], think=True, stream=True))
    assert parts[0].message.thinking == "Let me think."
    calls = [c for p in parts for c in (p.message.tool_calls or ())]
    assert [c.function.arguments for c in calls] == [{"city": "Paris"}]
    assert parts[-1].done_reason == "stop"


def test_fake_ollama_refuses_data_urls_as_images(fake_ollama: FakeServer) -> None:
    # (The ollama client refuses to send one at all, so this is plain HTTP.)
    body = {"model": "m", "prompt": "x", "images": ["data:image/png;base64,aGk="]}
    response = httpx.post(f"{fake_ollama.url}/api/generate", json=body)
    assert response.status_code == 400 and "base64" in response.json()["error"]


def test_openai_client_parses_the_fake_vllms_features(
    fake_openai: FakeServer[OpenAIBehaviour],
) -> None:
    fake_openai.configure(tool_calls=[CALL])
    client = openai.OpenAI(base_url=f"{fake_openai.url}/v1", api_key="x", max_retries=0)
    whole = client.chat.completions.create(
        model="m",
        messages=HI,
        tools=[TOOL],
        n=2,
        logprobs=True,  # type: ignore[list-item]
    )
    assert [c.index for c in whole.choices] == [0, 1]
    call = whole.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert whole.choices[0].finish_reason == "tool_calls"
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=HI,
            tools=[TOOL],
            stream=True,  # type: ignore[list-item]
        )
    )
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or ())]
    assert pieces[0].id and pieces[0].function and pieces[0].function.name == "get_weather"
    arguments = "".join((p.function.arguments or "") for p in pieces if p.function)
    assert json.loads(arguments) == {"city": "Paris"}
    try:
        client.chat.completions.create(model="m", messages=HI, tools=[])
    except openai.BadRequestError:
        pass
    else:
        raise AssertionError("vLLM refuses tools: []")
