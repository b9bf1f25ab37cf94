"""`llm-backends audit`: who changed what, from the server's audit log."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from llm_backends.cli_commands.client import AdminClient
from llm_backends.cli_commands.output import JsonOption, console, print_json, reporting, table


def _changes(entry: dict[str, Any]) -> str:
    created = str(entry.get("action", "")).endswith(".create")
    parts = []
    for field, change in (entry.get("changes") or {}).items():
        change = change or {}
        if created:
            parts.append(f"{field}={change.get('after')!r}")
        else:
            parts.append(f"{field}: {change.get('before')!r} -> {change.get('after')!r}")
    return "; ".join(parts)


def audit(
    model: Annotated[str | None, typer.Option(help="Only this model's entries.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this token name's entries.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Until this time (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many (newest first).")] = 0,
    json: JsonOption = False,
) -> None:
    """The audit log, newest first: every config and token write, who made it, what changed."""
    params = {
        "model": model,
        "actor": actor,
        "since": since,
        "until": until,
        "limit": limit,
        "offset": offset,
    }
    with reporting(), AdminClient.from_settings() as client:
        page = client.audit(params)
    if json:
        print_json(page)
        return
    rows = [
        [
            entry.get("at"),
            (entry.get("actor") or {}).get("name"),
            entry.get("action"),
            (entry.get("target") or {}).get("model_name") or (entry.get("target") or {}).get("id"),
            _changes(entry),
        ]
        for entry in page.get("items", [])
    ]
    console.print(table(None, ["When", "Who", "Action", "Target", "Changes"], rows))
    shown = len(rows)
    console.print(f"{shown} of {page.get('total', shown)} entries", style="dim")
