"""LangChain's ChatOpenAI and ChatOllama through the gateway: tools with `bind_tools` and
structured extraction with `with_structured_output`, judged by what LangChain parses.
(instructor, in its own venv: test_instructor.py.)"""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer
from tests.gateway.features import CALL, MODEL, configure


@tool
def get_weather(city: str) -> str:
    """Weather of a city."""
    return "sunny"


class City(BaseModel):
    city: str


def chat_openai(gateway: GatewayServer) -> ChatOpenAI:
    return ChatOpenAI(
        model=MODEL,
        base_url=f"{gateway.url}/v1",
        api_key="unused",
        max_retries=0,  # type: ignore[arg-type]
    )


def chat_ollama(gateway: GatewayServer) -> ChatOllama:
    return ChatOllama(model=MODEL, base_url=gateway.url)


@pytest.mark.parametrize("kind", ["ollama", "openai", "mlx"])
@pytest.mark.parametrize("client", ["openai", "ollama"])
def test_bind_tools(
    gateway: GatewayServer,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
    kind: str,
    client: str,
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    fake.configure(tool_calls=[CALL])
    model = chat_openai(gateway) if client == "openai" else chat_ollama(gateway)
    bound = model.bind_tools([get_weather])
    answer = bound.invoke("Weather in Paris?")
    assert isinstance(answer, AIMessage)
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    streamed = None
    for piece in bound.stream("Weather in Paris?"):
        streamed = piece if streamed is None else streamed + piece
    assert streamed is not None
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]


@pytest.mark.parametrize("kind", ["ollama", "openai"])
@pytest.mark.parametrize("client", ["openai", "ollama"])
def test_with_structured_output(
    gateway: GatewayServer,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
    kind: str,
    client: str,
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    fake.configure(reply='{"city": "Paris"}')
    model = chat_openai(gateway) if client == "openai" else chat_ollama(gateway)
    extractor = model.with_structured_output(City)
    assert extractor.invoke("Where?") == City(city="Paris")
    sent = fake.bodies[-1]
    schema_field = sent.get("format") if kind == "ollama" else sent.get("response_format")
    assert schema_field  # the schema reached the backend in its protocol's field


def test_bind_tools_any_is_required_and_refused_by_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "ollama", fake_ollama, fake_openai)
    import openai

    with pytest.raises(openai.BadRequestError) as raised:
        chat_openai(gateway).bind_tools([get_weather], tool_choice="any").invoke("x")
    assert "tool_choice: the ollama backend cannot force a tool choice" in str(raised.value)
