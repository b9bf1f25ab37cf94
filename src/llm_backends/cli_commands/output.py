"""How the CLI prints: rich tables for people, `--json` for scripts (and nothing else on stdout)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from llm_backends.cli_commands.client import ClientError

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True, emoji=False)
    raise typer.Exit(code)


@contextmanager
def reporting() -> Iterator[None]:
    """A ClientError ends the command with its message (and 422s name each field)."""
    try:
        yield
    except ClientError as error:
        body = error.body if isinstance(error.body, dict) else {}
        problems = body.get("errors") if error.status == 422 else None
        if problems:
            lines = []
            for item in problems:
                field = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                message = str(item.get("msg", "")).removeprefix("Value error, ")
                lines.append(f"  {field}: {message}")
            fail("invalid values:\n" + "\n".join(lines))
        fail(str(error))


NUMERIC = {"ID", "Requests", "Errors", "Avg latency", "Tokens/s", "In flight", "Probe"}


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    """A table whose cells are plain text (never rich markup: values come from users)."""
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        justify = "right" if column in NUMERIC else "left"
        result.add_column(column, justify=justify, overflow="fold")
    for row in rows:
        result.add_row(*[_text(cell) for cell in row])
    return result


def _text(value: Any) -> Any:
    if isinstance(value, Text):
        return value
    return Text("—" if value is None else str(value))


def ms(value: float | None) -> str | None:
    return None if value is None else f"{value:,.0f} ms"


def yes_no(value: bool | None, good: str = "yes", bad: str = "no") -> Any:
    if value is None:
        return Text("?", style="dim")
    return Text(good, style="green") if value else Text(bad, style="red")
