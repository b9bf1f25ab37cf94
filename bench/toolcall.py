"""The tool-call scenario: non-streaming chat with `tools` and a named `tool_choice` (what
instructor and LangChain's bind_tools send), at concurrency 1 and 32, against the same
targets as `chat`. The gateway then translates the request's features and forwards the
client's raw body to an OpenAI-protocol backend; the mock answers with plain text, so this
measures the request side of a tool call, next to the plain `chat` figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bench import procs
from bench.targets import Target, chat_body

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def tool_body(model: str) -> dict[str, Any]:
    body = chat_body(model)
    body["tools"] = [WEATHER_TOOL]
    body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    return body


def load_tools(target: Target, concurrency: int, duration: float, warmup: float) -> Any:
    """One closed-loop run of bench.load with the tool-call body."""
    argv = procs.load_argv(
        target.chat_url,
        json.dumps(tool_body(target.chat_model)),
        concurrency=concurrency,
        duration=duration,
        warmup=warmup,
        extra=target.header_args(),
    )
    return procs.run_json(argv, cpus=procs.CLIENT_CPU, timeout=duration + warmup + 90)


def scenario_tools(
    plan: Any,
    tgts: list[Target],
    interleaved: Callable[..., dict[str, list[dict[str, Any]]]],
    summarize: Callable[[dict[str, list[dict[str, Any]]]], dict[str, Any]],
) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for conc in (1, 32):
        runs = interleaved(
            plan,
            tgts,
            f"tools c={conc}",
            lambda t, c=conc: load_tools(t, c, plan.duration, plan.warmup),
        )
        res[f"c{conc}"] = summarize(runs)
    return res
