"""OpenAPI documentation of the discovery routes (/api/show, /api/ps, /v1/models/{id}).

`/api/show` passes on an Ollama's own answer, whose fields Ollama leaves out when empty, so
the documented shape is lenient: only what every answer has is required.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from llm_backends.gateway import docs


class OllamaShowAnswer(BaseModel):
    modelfile: str | None = None
    parameters: str | None = None
    template: str | None = None
    license: str | None = None
    details: dict[str, Any] | None = None
    model_info: dict[str, Any]
    capabilities: list[str] | None = None
    modified_at: str | None = None


class OllamaLoadedModel(BaseModel):
    name: str
    model: str
    size: int | None = None
    digest: str | None = None
    details: dict[str, Any] | None = None
    expires_at: str | None = None
    size_vram: int | None = None
    context_length: int | None = None


class OllamaPs(BaseModel):
    models: list[OllamaLoadedModel]


#: Schemas the routes refer to, for the app's `components.schemas`.
DOCUMENTED: tuple[type[BaseModel], ...] = (OllamaShowAnswer, OllamaPs)

_STATUSES = {
    400: "Bad request body: the message names the field",
    401: "Token missing or invalid (only with GATEWAY_REQUIRE_AUTH=true)",
    403: "Token lacks llm:generate (only with GATEWAY_REQUIRE_AUTH=true)",
    404: "No such model (at its backend, or in any list)",
    500: "Unexpected gateway failure (no details are leaked)",
    502: "The backend is down or answered outside its protocol",
    503: "The config or token store cannot be reached",
    504: "The backend did not answer in time",
}


def _responses(
    answer: type[BaseModel], error: type[BaseModel], statuses: tuple[int, ...]
) -> dict[int | str, dict[str, Any]]:
    def content(model: type[BaseModel]) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": docs.REF.format(model=model.__name__)}}}

    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": content(answer)}
    }
    for status in statuses:
        responses[status] = {"description": _STATUSES[status], "content": content(error)}
    return responses


def show_responses() -> dict[int | str, dict[str, Any]]:
    return _responses(OllamaShowAnswer, docs.OllamaError, tuple(_STATUSES))


def retrieve_responses() -> dict[int | str, dict[str, Any]]:
    return _responses(docs.ModelEntry, docs.OpenAIError, (401, 403, 404, 500, 503))
