"""Checks of a config's fleet fields that need the other configs: fallback chains.

A fallback must name an existing config, must not lead back to the config itself (a cycle
would bounce a failing request between models), and the chain followed through the other
configs' own fallbacks is capped at MAX_FALLBACKS models. The router enforces the same cap
and skips a model it already tried, so a cycle slipped in by concurrent writes is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_backends.admin.schemas import MAX_FALLBACKS, ServerIn, check_servers
from llm_backends.store.models import LLMBackend


def _invalid(message: str) -> HTTPException:
    return HTTPException(422, message)


def fallback_problem(
    model_name: str, fallbacks: Sequence[str], graph: Mapping[str, Sequence[str]]
) -> str | None:
    """Why `model_name -> fallbacks` is refused given the other configs' `graph`, or None."""
    for name in fallbacks:
        if name == model_name:
            return f"fallbacks: {name!r} is this config itself"
        if name not in graph:
            return f"fallbacks: unknown model {name!r} (no config has this model_name)"
    edges = {**graph, model_name: list(fallbacks)}
    chain: list[str] = []
    seen = {model_name}

    def walk(name: str, path: list[str]) -> str | None:
        for nxt in edges.get(name, ()):
            if nxt == model_name:
                return "fallbacks: cycle " + " -> ".join([*path, nxt])
            if nxt in seen:
                continue
            seen.add(nxt)
            chain.append(nxt)
            problem = walk(nxt, [*path, nxt])
            if problem:
                return problem
        return None

    problem = walk(model_name, [model_name])
    if problem:
        return problem
    if len(chain) > MAX_FALLBACKS:
        return (
            f"fallbacks: the chain {' -> '.join([model_name, *chain])} is longer than "
            f"{MAX_FALLBACKS} models"
        )
    return None


async def check_fleet(
    session: AsyncSession, fields: Mapping[str, Any], *, old_name: str | None = None
) -> None:
    """Raise a 422 naming the field when the merged config's fleet fields are refused."""
    fallbacks = fields.get("fallbacks") or []
    endpoints = [
        server if isinstance(server, ServerIn) else ServerIn.model_validate(server)
        for server in fields.get("endpoints") or []
    ]
    try:
        check_servers(
            fields.get("endpoint_url"),
            endpoints,
            fields.get("backend_type"),
            fields.get("max_concurrency"),
            fallbacks,
        )
    except ValueError as error:
        raise _invalid(str(error)) from None
    if not fallbacks:
        return
    rows = await session.execute(select(LLMBackend.model_name, LLMBackend.fallbacks))
    graph = {name: list(chain or ()) for name, chain in rows.all() if name != old_name}
    graph.pop(fields["model_name"], None)
    problem = fallback_problem(fields["model_name"], fallbacks, graph)
    if problem:
        raise _invalid(problem)
