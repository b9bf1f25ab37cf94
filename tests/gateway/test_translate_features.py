"""Each translation rule as plain functions, both directions, whole and streamed: requests
into the router's request, router answers and chunks into each protocol's objects."""

from __future__ import annotations

import orjson
import pytest

from llm_backends.gateway.errors import GatewayError
from llm_backends.gateway.schemas import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OpenAIChatRequest,
    OpenAICompletionRequest,
    parse,
)
from llm_backends.gateway.streaming import OllamaEncoder, OpenAIEncoder
from llm_backends.gateway.translate import RouterCall
from llm_backends.gateway.translate_ollama import (
    ollama_chat_call,
    ollama_generate_call,
    ollama_response,
)
from llm_backends.gateway.translate_openai import (
    openai_chat_call,
    openai_chat_response,
    openai_completion_call,
    openai_completion_response,
)
from llm_backends.router.types import (
    Choice,
    Chunk,
    CompletionRequest,
    ResponseFormat,
    Result,
    ToolCall,
    ToolCallDelta,
)

CALL = ToolCall("call_1", "get_weather", '{"city": "Paris"}')


def openai_call(body: dict) -> RouterCall:
    raw = orjson.dumps(body)
    return openai_chat_call(parse(OpenAIChatRequest, raw), raw)


def ollama_call(body: dict) -> RouterCall:
    raw = orjson.dumps(body)
    return ollama_chat_call(parse(OllamaChatRequest, raw), raw)


def result(**fields: object) -> Result:
    values: dict[str, object] = {
        "response": "",
        "backend": "ollama",
        "model": "m",
        "done": True,
        "finish_reason": "tool_calls",
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "latency_ms": 1.0,
        "tokens_per_sec": None,
        "fallback_from": None,
        "endpoint": "http://x",
    }
    values.update(fields)
    return Result(**values)  # type: ignore[arg-type]


# -- requests -----------------------------------------------------------------------------


def test_openai_request_features_to_the_router() -> None:
    request = openai_call(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": False,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            "reasoning_effort": "low",
            "n": 2,
            "logprobs": True,
            "top_logprobs": 3,
            "seed": 4,
            "repetition_penalty": 1.1,
        }
    ).request
    assert request.rich
    assert request.tool_choice == "function:f" and request.parallel_tool_calls is False
    assert request.response_format == ResponseFormat("json_schema", {}, "x")
    assert (request.think, request.n, request.logprobs, request.top_logprobs) == ("low", 2, True, 3)
    assert request.sampling is not None
    assert (request.sampling.seed, request.sampling.repeat_penalty) == (4, 1.1)
    assert request.passthrough is not None and request.passthrough.protocol == "openai"


def test_plain_openai_request_is_not_rich_and_keeps_the_clients_messages() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 1}
    call = openai_call(body)
    assert not call.request.rich
    assert call.messages == body["messages"]


def test_openai_completion_logprobs_and_suffix() -> None:
    raw = b'{"model": "m", "prompt": "a", "suffix": "z", "logprobs": 2, "n": 1}'
    request = openai_completion_call(parse(OpenAICompletionRequest, raw), raw).request
    assert (request.suffix, request.logprobs, request.top_logprobs) == ("z", True, 2)


def test_ollama_request_features_to_the_router() -> None:
    request = ollama_call(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "see", "images": ["aGk="]},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
                },
                {"role": "tool", "content": "ok", "tool_name": "f"},
            ],
            "format": "json",
            "think": "medium",
            "keep_alive": 0,
            "options": {"top_k": 2, "num_ctx": 8192, "num_thread": 4},
        }
    ).request
    messages = request.messages or []
    assert messages[0]["images"] == ["aGk="]
    call = messages[1]["tool_calls"][0]
    assert call.name == "f" and call.arguments == '{"a":1}' and call.id.startswith("call_")
    assert messages[2]["tool_call_id"] == call.id
    assert request.response_format == ResponseFormat("json_object")
    assert (request.think, request.keep_alive) == ("medium", 0)
    assert request.sampling is not None
    assert (request.sampling.top_k, request.sampling.num_ctx) == (2, 8192)
    assert request.sampling.extra == {"num_thread": 4}


def test_ollama_generate_images_and_suffix() -> None:
    raw = (
        b'{"model": "m", "prompt": "a", "images": ["aGk="], "suffix": "z",'
        b' "format": {"type": "object"}}'
    )
    request = ollama_generate_call(parse(OllamaGenerateRequest, raw), raw).request
    assert request.images == ("aGk=",) and request.suffix == "z"
    assert request.response_format == ResponseFormat("json_schema", {"type": "object"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ]
            },
            "messages.0.content.0.image_url.url: an image URL must be a base64 data: URL"
            " or http(s)",
        ),
        (
            {"messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": {}}]}]},
            "messages.0.tool_calls.0.function.name: required",
        ),
    ],
)
def test_bad_feature_fields_are_400_naming_the_field(body: dict, message: str) -> None:
    with pytest.raises(GatewayError) as raised:
        openai_call({"model": "m", **body})
    assert raised.value.status == 400
    assert raised.value.message == message
    assert raised.value.param == message.partition(":")[0]


# -- whole answers ------------------------------------------------------------------------


def test_tool_calls_and_reasoning_to_openai_and_ollama_answers() -> None:
    chat = RouterCall("m", CompletionRequest(messages=[]))
    answer = result(tool_calls=(CALL,), reasoning="hmm")
    message = openai_chat_response(chat, answer)["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [CALL.openai()],
        "reasoning_content": "hmm",
    }
    ollama = ollama_response(chat, answer, 0.1)
    assert ollama["done_reason"] == "stop"
    assert ollama["message"] == {
        "role": "assistant",
        "content": "",
        "thinking": "hmm",
        "tool_calls": [
            {
                "id": "call_1",
                "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    }


def test_choices_and_logprobs_to_openai_answers() -> None:
    entries = [{"token": "a", "logprob": -1.0, "top_logprobs": [{"token": "a", "logprob": -1.0}]}]
    answer = result(
        response="a",
        finish_reason="stop",
        choices=(Choice(0, "a", logprobs=entries), Choice(1, "b")),
    )
    chat = openai_chat_response(RouterCall("m", CompletionRequest(messages=[])), answer)
    assert [c["message"]["content"] for c in chat["choices"]] == ["a", "b"]
    assert chat["choices"][0]["logprobs"] == {"content": entries}
    text = openai_completion_response(RouterCall("m", CompletionRequest(prompt="x")), answer)
    assert text["choices"][0]["logprobs"]["top_logprobs"] == [{"a": -1.0}]


# -- streams ------------------------------------------------------------------------------


def sse(data: bytes) -> list[dict]:
    return [orjson.loads(line[6:]) for line in data.split(b"\n\n") if line.startswith(b"data: {")]


def test_openai_stream_of_tool_call_pieces_and_reasoning() -> None:
    encoder = OpenAIEncoder(RouterCall("m", CompletionRequest(messages=[]), stream=True))
    events = sse(
        encoder.chunk(Chunk("", reasoning="hmm"))
        + encoder.chunk(Chunk("", tool_calls=(ToolCallDelta(0, None, "f", '{"a":'),)))
        + encoder.chunk(Chunk("", tool_calls=(ToolCallDelta(0, None, None, "1}"),)))
        + encoder.chunk(Chunk("", done=True, finish_reason="stop"))
    )
    deltas = [e["choices"][0]["delta"] for e in events]
    assert deltas[0]["reasoning_content"] == "hmm" and deltas[0]["role"] == "assistant"
    head, tail = deltas[1]["tool_calls"][0], deltas[2]["tool_calls"][0]
    assert head["id"].startswith("call_") and head["type"] == "function"
    assert head["function"] == {"name": "f", "arguments": '{"a":'}
    assert tail == {"index": 0, "function": {"arguments": "1}"}}
    # Ollama said "stop" after calling tools: OpenAI clients get "tool_calls".
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_ollama_stream_gathers_tool_call_pieces_into_whole_calls() -> None:
    encoder = OllamaEncoder(RouterCall("m", CompletionRequest(messages=[])), started=0.0)
    lines = (
        encoder.chunk(Chunk("", reasoning="hmm"))
        + encoder.chunk(Chunk("", tool_calls=(ToolCallDelta(0, "call_9", "f", '{"a":'),)))
        + encoder.chunk(Chunk("", tool_calls=(ToolCallDelta(0, None, None, "1}"),)))
        + encoder.chunk(Chunk("", done=True, finish_reason="tool_calls"))
    )
    objects = [orjson.loads(line) for line in lines.splitlines()]
    assert objects[0]["message"]["thinking"] == "hmm"
    calls = [c for o in objects for c in o["message"].get("tool_calls", ())]
    assert calls == [{"id": "call_9", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}}]
    assert objects[-1]["done"] is True and objects[-1]["done_reason"] == "stop"
