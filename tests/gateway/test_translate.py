"""Protocol translation both ways as plain functions (no server): requests into router calls,
router answers and chunks into each protocol's objects, and error bodies."""

from __future__ import annotations

import orjson
import pytest

from llm_backends.gateway.errors import (
    GatewayError,
    Protocol,
    error_body,
    from_router_error,
    redact,
)
from llm_backends.gateway.schemas import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OpenAIChatRequest,
    OpenAICompletionRequest,
    parse,
)
from llm_backends.gateway.streaming import OllamaEncoder, OpenAIEncoder
from llm_backends.gateway.translate import RouterCall, ollama_stats, usage
from llm_backends.gateway.translate_ollama import (
    ollama_chat_call,
    ollama_generate_call,
    ollama_response,
)
from llm_backends.gateway.translate_openai import (
    openai_chat_call,
    openai_chat_response,
    openai_completion_call,
)
from llm_backends.router.errors import BackendTimeout, ModelNotFound
from llm_backends.router.types import Chunk, CompletionRequest, Result


def chat_call(raw: bytes) -> RouterCall:
    return openai_chat_call(parse(OpenAIChatRequest, raw), raw)


def result(**fields: object) -> Result:
    values: dict[str, object] = {
        "response": "Paris",
        "backend": "mlx",
        "model": "m",
        "done": True,
        "finish_reason": "length",
        "prompt_tokens": 7,
        "completion_tokens": 4,
        "latency_ms": 100.0,
        "tokens_per_sec": 40.0,
        "fallback_from": None,
        "endpoint": "http://mlx:8080",
    }
    values.update(fields)
    return Result(**values)  # type: ignore[arg-type]


# -- requests -----------------------------------------------------------------------------


def test_openai_chat_request_to_router_call() -> None:
    body = parse(
        OpenAIChatRequest,
        orjson.dumps(
            {
                "model": "m",
                "messages": [
                    {"role": "developer", "content": "Be brief."},
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    },
                    {"role": "assistant", "content": None},
                ],
                "temperature": 0,
                "max_tokens": 10,
                "max_completion_tokens": 20,
                "stop": "END",
                "stream": True,
                "stream_options": {"include_usage": True},
                "top_p": 0.9,
                "user": "ignored",
            }
        ),
    )
    call = openai_chat_call(body, b"{}")
    request = call.request
    assert call.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": ""},
    ]
    assert (request.temperature, request.max_tokens, request.stop) == (0, 20, ["END"])
    assert request.sampling is not None and request.sampling.top_p == 0.9
    assert call.stream and call.include_usage and call.is_chat


def test_openai_completion_prompt_list_of_one() -> None:
    body = parse(OpenAICompletionRequest, b'{"model": "m", "prompt": ["once"], "stop": []}')
    call = openai_completion_call(body, b"{}")
    assert (call.prompt, call.request.stop, call.stream, call.is_chat) == (
        "once",
        None,
        False,
        False,
    )


def test_ollama_requests_to_router_calls() -> None:
    generate = ollama_generate_call(
        parse(
            OllamaGenerateRequest,
            b'{"model": "m", "prompt": "hi", "system": "S", "suffix": "", "keep_alive": "5m",'
            b' "options": {"temperature": 0.5, "num_predict": -1, "stop": ["x"], "top_k": 3}}',
        ),
        b"{}",
    )
    request = generate.request
    assert (generate.prompt, request.system, request.temperature) == ("hi", "S", 0.5)
    assert request.max_tokens is None  # -1: the config's max_tokens
    assert request.stop == ["x"]
    assert request.keep_alive == "5m" and request.sampling and request.sampling.top_k == 3
    assert generate.stream  # Ollama's default
    assert not generate.load_only

    chat = ollama_chat_call(
        parse(
            OllamaChatRequest,
            b'{"model": "m", "stream": false, "tools": [],'
            b' "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 3}}',
        ),
        b"{}",
    )
    assert chat.messages == [{"role": "user", "content": "hi"}]
    assert (chat.request.max_tokens, chat.stream) == (3, False)
    assert not chat.request.rich  # tools: [] is no tools


def test_empty_ollama_prompt_is_a_load_request() -> None:
    raw = b'{"model": "m"}'
    assert ollama_generate_call(parse(OllamaGenerateRequest, raw), raw).load_only
    raw = b'{"model": "m", "messages": []}'
    assert ollama_chat_call(parse(OllamaChatRequest, raw), raw).load_only


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (
            b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            "messages.0.content.0.image_url.url",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}',
            "messages.0.content.0.type",
        ),
        (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', "messages.0.content"),
        (b'{"model": 5, "messages": []}', "model"),
    ],
)
def test_bad_fields_are_named_without_pydantic_union_tags(raw: bytes, param: str) -> None:
    with pytest.raises(GatewayError) as raised:
        chat_call(raw)
    assert raised.value.status == 400
    assert raised.value.param == param
    assert f"{param}: " in raised.value.message


def test_strict_types_refuse_strings_for_numbers_and_booleans() -> None:
    for raw in (
        b'{"model": "m", "prompt": "x", "stream": "true"}',
        b'{"model": "m", "prompt": "x", "max_tokens": "5"}',
    ):
        with pytest.raises(GatewayError):
            parse(OpenAICompletionRequest, raw)
    # JSON integers are fine where numbers are expected.
    assert parse(OpenAICompletionRequest, b'{"model": "m", "prompt": "x", "temperature": 1}')


# -- responses ----------------------------------------------------------------------------


def test_result_to_openai_chat_completion() -> None:
    call = RouterCall("m", CompletionRequest(messages=[{"role": "user", "content": "q"}]))
    data = openai_chat_response(call, result())
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris"},
            "logprobs": None,
            "finish_reason": "length",
        }
    ]
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


def test_usage_is_null_only_when_nothing_was_counted() -> None:
    assert usage(None, None) is None
    assert usage(None, 3) == {"prompt_tokens": 0, "completion_tokens": 3, "total_tokens": 3}


def test_result_to_ollama_generate_answer() -> None:
    call = RouterCall("m", CompletionRequest(prompt="q"))
    data = ollama_response(call, result(), total_seconds=0.5)
    assert data["response"] == "Paris" and "message" not in data
    assert (data["done"], data["done_reason"]) == (True, "length")
    assert (data["prompt_eval_count"], data["eval_count"]) == (7, 4)
    # 4 tokens at 40 tokens/s: 0.1 s generating, the rest of the 0.5 s evaluating the prompt.
    assert data["eval_duration"] == 100_000_000
    assert data["total_duration"] == 500_000_000
    assert data["prompt_eval_duration"] == 400_000_000
    assert data["load_duration"] == 0


def test_ollama_stats_without_counts_or_speed() -> None:
    stats = ollama_stats(None, None, 0.25, None)
    assert "eval_count" not in stats and "prompt_eval_count" not in stats
    assert stats["eval_duration"] == stats["total_duration"] == 250_000_000


def test_openai_encoder_chat_events() -> None:
    encoder = OpenAIEncoder(
        RouterCall("m", CompletionRequest(messages=[]), stream=True, include_usage=True)
    )
    events = [
        encoder.chunk(Chunk("Hel")),
        encoder.chunk(Chunk("lo")),
        encoder.chunk(
            Chunk("", done=True, finish_reason="length", prompt_tokens=2, completion_tokens=2)
        ),
    ]
    lines = [line for event in events for line in event.decode().split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    objects = [orjson.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert objects[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert objects[1]["choices"][0]["delta"] == {"content": "lo"}
    assert objects[2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert objects[3]["choices"] == [] and objects[3]["usage"]["total_tokens"] == 4
    assert len({o["id"] for o in objects}) == 1


def test_ollama_encoder_lines() -> None:
    encoder = OllamaEncoder(RouterCall("m", CompletionRequest(messages=[])), started=0.0)
    first = orjson.loads(encoder.chunk(Chunk("Hi")))
    assert first["message"] == {"role": "assistant", "content": "Hi"} and first["done"] is False
    last = orjson.loads(
        encoder.chunk(Chunk("!", done=True, finish_reason="stop", completion_tokens=2))
    )
    assert last["message"]["content"] == "!" and last["done"] is True
    assert last["done_reason"] == "stop" and last["eval_count"] == 2
    assert last["eval_duration"] <= last["total_duration"]


# -- errors -------------------------------------------------------------------------------


def test_router_errors_map_to_status_and_code() -> None:
    timeout = from_router_error(
        BackendTimeout("no answer", model="m", backend="ollama", endpoint="e")
    )
    assert (timeout.status, timeout.code, timeout.backend) == (504, "backend_timeout", "ollama")
    missing = from_router_error(ModelNotFound("HTTP 404", model="m", backend="mlx", endpoint="e"))
    assert (missing.status, missing.code) == (404, "model_not_found")
    assert (
        orjson.loads(error_body(Protocol.OPENAI, missing))["error"]["type"]
        == "invalid_request_error"
    )
    assert orjson.loads(error_body(Protocol.OPENAI, timeout))["error"]["type"] == "api_error"
    assert orjson.loads(error_body(Protocol.OLLAMA, timeout)) == {"error": timeout.message}


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("cannot reach http://user:hunter2@host:1/v1", "hunter2"),
        ("HTTP 401: Authorization: Bearer sk-abc123 rejected", "sk-abc123"),
        ("endpoint='http://h/?api_key=k-1&x=2'", "k-1"),
        ("token llmb_abcdefghijklmnop leaked", "llmb_abcdefghijklmnop"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "[redacted]" in redact(text)
