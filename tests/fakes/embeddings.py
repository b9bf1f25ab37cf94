"""Embeddings and model discovery as Ollama and vLLM really answer them, for the fakes.

Ollama (server/routes.go): `POST /api/embed` `{model, input: str | [str], truncate, dimensions,
options, keep_alive}` -> `{model, embeddings, total_duration, load_duration, prompt_eval_count}`
with every vector L2-normalised (and re-normalised after cutting to `dimensions`); an empty
input answers `embeddings: []`; a non-string item is 400 `invalid input type`. The legacy
`POST /api/embeddings` `{model, prompt}` -> `{embedding}` (not normalised; an empty prompt only
loads: `embedding: []`). `POST /api/show` takes `model` or the legacy `name` (400 `model is
required`, 404 `model 'x' not found`). `GET /api/ps` lists loaded models.

vLLM (entrypoints/openai, pooling): `POST /v1/embeddings` `{model, input: str | [str] | [int] |
[[int]], encoding_format: "float" | "base64", dimensions, user}` -> `{id, object: "list",
created, model, data: [{index, object: "embedding", embedding}], usage: {prompt_tokens,
total_tokens, completion_tokens: 0}}`; base64 is the little-endian float32 bytes. `/v1/models`
entries carry `root` and `max_model_len`.

Vectors are a deterministic function of the text (or tokens), so tests can compare what a
client parsed with what the fake computed.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.common import Behaviour, FakeState, pause


def vector(item: str | list[int], dim: int) -> list[float]:
    """The raw (unnormalised) vector of one input: floats in [-1, 1] from its hash."""
    key = item.encode() if isinstance(item, str) else repr(item).encode()
    digest = b""
    counter = 0
    while len(digest) < dim * 2:
        digest += hashlib.sha256(key + counter.to_bytes(4, "little")).digest()
        counter += 1
    return [
        round((int.from_bytes(digest[i * 2 : i * 2 + 2], "little") / 65535.0) * 2 - 1, 6)
        for i in range(dim)
    ]


def normalize(values: list[float]) -> list[float]:
    norm = 1.0 / max(math.sqrt(sum(v * v for v in values)), 1e-12)
    return [v * norm for v in values]


def ollama_vector(text: str, dim: int, dimensions: int | None = None) -> list[float]:
    """What Ollama's /api/embed answers for `text`: normalised, cut to `dimensions`."""
    values = normalize(vector(text, dim))
    if dimensions and 0 < dimensions < len(values):
        values = normalize(values[:dimensions])
    return values


def token_count(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else max(len(item.split()), 1)


def float32_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _safe(text: object) -> str:
    """A client's string as Go would echo it: lone surrogates become U+FFFD."""
    return str(text).encode("utf-8", "replace").decode("utf-8")


def _failure(behaviour: Behaviour) -> tuple[int, str] | None:
    return (behaviour.status, behaviour.error) if behaviour.status != 200 else None


async def ollama_embed(state: FakeState[Any], request: Request) -> Response:
    recorded = await state.record(request)
    behaviour = state.behaviour_for_next()
    await pause(request, behaviour.delay)
    body = recorded.body
    if not isinstance(body, dict):
        return _ollama_error(400, "missing request body")
    model = _safe(body.get("model") or "")
    if not behaviour.knows(model):
        return _ollama_error(404, f"model '{model}' not found")
    if failure := _failure(behaviour):
        return _ollama_error(*failure)
    raw = body.get("input")
    if isinstance(raw, str):
        texts = [raw] if raw else []
    elif isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        texts = raw
    elif raw is None:
        texts = []
    else:
        return _ollama_error(400, "invalid input type")
    if not texts:
        return JSONResponse({"model": model, "embeddings": []})
    dim = behaviour.embedding_dim  # type: ignore[attr-defined]
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)):
        # Go's encoding/json into EmbedRequest.Dimensions (an int) refuses 1.0 and "1".
        return _ollama_error(
            400,
            f"json: cannot unmarshal {type(dimensions).__name__} into Go struct field "
            "EmbedRequest.dimensions of type int",
        )
    return JSONResponse(
        {
            "model": model,
            "embeddings": [ollama_vector(t, dim, dimensions) for t in texts],
            "total_duration": 14_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": sum(token_count(t) for t in texts),
        }
    )


async def ollama_embeddings(state: FakeState[Any], request: Request) -> Response:
    recorded = await state.record(request)
    behaviour = state.behaviour_for_next()
    body = recorded.body
    if not isinstance(body, dict):
        return _ollama_error(400, "missing request body")
    model = _safe(body.get("model") or "")
    if not model:
        return _ollama_error(400, "model is required")
    if not behaviour.knows(model):
        return _ollama_error(404, f"model '{model}' not found")
    if failure := _failure(behaviour):
        return _ollama_error(*failure)
    prompt = body.get("prompt") or ""
    if not prompt:
        return JSONResponse({"embedding": []})
    return JSONResponse({"embedding": vector(prompt, behaviour.embedding_dim)})  # type: ignore[attr-defined]


async def ollama_show(state: FakeState[Any], request: Request) -> Response:
    recorded = await state.record(request)
    behaviour = state.behaviour_for_next()
    body = recorded.body if isinstance(recorded.body, dict) else {}
    model = _safe(body.get("model") or body.get("name") or "")
    if not model:
        return _ollama_error(400, "model is required")
    if model not in behaviour.models and f"{model}:latest" not in behaviour.models:
        return _ollama_error(404, f"model '{model}' not found")
    if failure := _failure(behaviour):
        return _ollama_error(*failure)
    context = behaviour.context_length  # type: ignore[attr-defined]
    return JSONResponse(
        {
            "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT",
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {model}\n',
            "parameters": 'stop                           "<|eot_id|>"',
            "template": "{{ if .Tools }}tools{{ end }}{{ .Prompt }}{{ .Suffix }}",
            "details": _details(),
            "model_info": {
                "general.architecture": "llama",
                "general.parameter_count": 3_212_749_888,
                "llama.context_length": context,
                "llama.embedding_length": 3072,
            },
            "capabilities": ["completion", "tools"],
            "modified_at": "2025-01-01T00:00:00Z",
        }
    )


async def ollama_ps(state: FakeState[Any], request: Request) -> Response:
    await state.record(request)
    behaviour = state.behaviour_for_next()
    if failure := _failure(behaviour):
        return _ollama_error(*failure)
    models = [
        {
            "name": name,
            "model": name,
            "size": 3_400_000_000,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": _details(),
            "expires_at": "2030-01-01T00:05:00Z",
            "size_vram": 3_400_000_000,
            "context_length": behaviour.context_length,  # type: ignore[attr-defined]
        }
        for name in behaviour.loaded  # type: ignore[attr-defined]
    ]
    return JSONResponse({"models": models})


async def vllm_embeddings(state: FakeState[Any], request: Request) -> Response:
    recorded = await state.record(request)
    behaviour = state.behaviour_for_next()
    await pause(request, behaviour.delay)
    body = recorded.body
    if not isinstance(body, dict):
        return _vllm_error(400, "Invalid JSON in request body")
    model = _safe(body.get("model", "default_model"))
    if "model" in body and not behaviour.knows(model):
        return _vllm_error(404, f"The model `{model}` does not exist.")
    if failure := _failure(behaviour):
        return _vllm_error(*failure)
    items = _vllm_items(body.get("input"))
    if items is None:
        return _vllm_error(400, "input: expected a string, a list of strings or token ids")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        return _vllm_error(400, f"encoding_format: unknown {encoding!r}")
    dimensions = body.get("dimensions")
    if isinstance(dimensions, float) and dimensions.is_integer():
        dimensions = int(dimensions)  # pydantic's lax int, as vLLM's request model has it
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)):
        return _vllm_error(400, "dimensions: Input should be a valid integer")
    data = []
    for index, item in enumerate(items):
        values = normalize(vector(item, behaviour.embedding_dim))  # type: ignore[attr-defined]
        if dimensions:
            values = normalize(values[:dimensions])
        embedding: Any = float32_base64(values) if encoding == "base64" else values
        data.append({"index": index, "object": "embedding", "embedding": embedding})
    tokens = sum(token_count(item) for item in items)
    return JSONResponse(
        {
            "id": "embd-fake",
            "object": "list",
            "created": int(time.time()),
            "model": model,
            "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
        }
    )


def vllm_model(name: str, max_model_len: int) -> dict[str, Any]:
    """One `/v1/models` entry as vLLM lists it."""
    return {
        "id": name,
        "object": "model",
        "created": 1_700_000_000,
        "owned_by": "vllm",
        "root": name,
        "parent": None,
        "max_model_len": max_model_len,
        "permission": [],
    }


def _vllm_items(raw: object) -> list[str | list[int]] | None:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(x, str) for x in raw):
            return list(raw)
        if all(isinstance(x, int) for x in raw):
            return [list(raw)]
        if all(isinstance(x, list) and all(isinstance(i, int) for i in x) for x in raw):
            return list(raw)
    return None


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
    }


def _ollama_error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _vllm_error(status: int, message: str) -> Response:
    kind = "BadRequestError" if status < 500 else "InternalServerError"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": status}},
        status_code=status,
    )
