"""Runs in .venv-clients (instructor's own pins): one extraction through the gateway, printed
as one JSON line, `{"city": ...}` or `{"error": type, "message": ...}`.

Usage: python instructor_extract.py BASE_URL MODEL MODE [stream]
"""

from __future__ import annotations

import json
import sys

import instructor
import openai
from pydantic import BaseModel


class City(BaseModel):
    city: str


def main(base_url: str, model: str, mode: str, stream: bool) -> dict[str, object]:
    client = instructor.from_openai(
        openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0),
        mode=instructor.Mode[mode],
    )
    messages = [{"role": "user", "content": "Where is the Eiffel tower?"}]
    try:
        if stream:
            partials = client.chat.completions.create_partial(
                model=model, response_model=City, messages=messages, max_retries=0
            )
            *_, last = partials  # the last partial is the whole object
            return last.model_dump()
        city = client.chat.completions.create(
            model=model, response_model=City, messages=messages, max_retries=0
        )
        return city.model_dump()
    except Exception as error:  # the test judges which error, and its message
        cause = error.__cause__ or error
        while isinstance(cause, Exception) and cause.__cause__ is not None:
            cause = cause.__cause__
        return {"error": type(cause).__name__, "message": str(cause)}


if __name__ == "__main__":
    url, model_name, mode_name, *rest = sys.argv[1:]
    print(json.dumps(main(url, model_name, mode_name, rest == ["stream"])))
