"""`llm-backends backends ...`: list, show, add, update, toggle and delete configs over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from llm_backends.cli_commands.client import AdminClient
from llm_backends.cli_commands.output import (
    JsonOption,
    YesOption,
    console,
    ms,
    print_json,
    reporting,
    table,
    yes_no,
)

app = typer.Typer(help="Manage backend configs (over the Admin API).", no_args_is_help=True)

Target = Annotated[str, typer.Argument(help="A config's id, or its model name.")]
LIST_COLUMNS = [
    "ID",
    "Model",
    "Type",
    "Endpoint",
    "Enabled",
    "Requests",
    "Errors",
    "Avg latency",
    "Tokens/s",
]


def _row(row: dict[str, Any]) -> list[Any]:
    tps = row.get("avg_tokens_per_sec")
    return [
        row["id"],
        row["model_name"],
        row["backend_type"],
        row["endpoint_url"],
        yes_no(row["enabled"]),
        row["total_requests"],
        row["total_errors"],
        ms(row.get("avg_latency_ms")),
        None if tps is None else f"{tps:.1f}",
    ]


@app.command("list")
def list_(
    json: JsonOption = False,
    enabled_only: Annotated[bool, typer.Option(help="Only enabled configs.")] = False,
) -> None:
    """Every config, ordered by model name."""
    with reporting(), AdminClient.from_settings() as client:
        rows = client.list_backends(enabled_only=enabled_only)
    if json:
        print_json(rows)
        return
    if not rows:
        console.print("No configs. Unknown models go to the default Ollama.")
        return
    console.print(table(None, LIST_COLUMNS, [_row(r) for r in rows]))


@app.command()
def show(target: Target, json: JsonOption = False) -> None:
    """One config, every field."""
    with reporting(), AdminClient.from_settings() as client:
        row = client.find_backend(target)
    if json:
        print_json(row)
        return
    console.print(
        table(
            f"{row['model_name']} (id {row['id']})",
            ["Field", "Value"],
            [[key, value] for key, value in row.items()],
        )
    )


def _fields(**values: Any) -> dict[str, Any]:
    """Only the options that were given (None = not given)."""
    return {key: value for key, value in values.items() if value is not None}


def _config_fields(
    backend_model: str | None,
    max_tokens: int | None,
    temperature: float | None,
    timeout: int | None,
    priority: int | None,
    description: str | None,
    api_key: str | None,
    endpoints: list[str] | None,
    fallbacks: list[str] | None,
    max_concurrency: int | None,
) -> dict[str, Any]:
    """The options `add` and `update` share, given ones only, under the API's field names."""
    return _fields(
        backend_model=backend_model,
        max_tokens=max_tokens,
        temperature_default=temperature,
        timeout_seconds=timeout,
        priority=priority,
        description=description,
        api_key=api_key,
        max_concurrency=max_concurrency,
        fallbacks=fallbacks,
        endpoints=None if endpoints is None else [{"url": url} for url in endpoints],
    )


ModelName = Annotated[str | None, typer.Option("--model-name", help="Rename the model.")]
BackendType = Annotated[str | None, typer.Option("--type", help="ollama, openai, mlx or auto.")]
Endpoint = Annotated[str | None, typer.Option("--url", help="The server's root URL.")]
BackendModel = Annotated[
    str | None, typer.Option(help="The id the server knows, if it differs from the model name.")
]
MaxTokens = Annotated[int | None, typer.Option(help="Cap on generated tokens.")]
Temperature = Annotated[float | None, typer.Option("--temperature", help="Default temperature.")]
Timeout = Annotated[int | None, typer.Option("--timeout", help="Seconds per request.")]
Priority = Annotated[int | None, typer.Option(help="Priority (lower first).")]
Description = Annotated[str | None, typer.Option(help="A note for people.")]
Servers = Annotated[
    list[str] | None,
    typer.Option("--endpoint", help="Another server of the same model; repeat for several."),
]
Fallbacks = Annotated[
    list[str] | None,
    typer.Option("--fallback", help="A model tried when every server failed; repeat, in order."),
]
MaxConcurrency = Annotated[
    int | None, typer.Option(help="Most requests in flight per server (then queue/429).")
]
ApiKey = Annotated[
    str | None, typer.Option(help="The server's API key (write-only; never shown again).")
]


@app.command()
def add(
    model: Annotated[str, typer.Argument(help="The model name clients will ask for.")],
    backend_type: Annotated[str, typer.Option("--type", help="ollama, openai, mlx or auto.")],
    endpoint: Annotated[str, typer.Option("--url", help="The server's root URL.")],
    backend_model: BackendModel = None,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    timeout: Timeout = None,
    priority: Priority = None,
    description: Description = None,
    api_key: ApiKey = None,
    endpoints: Servers = None,
    fallbacks: Fallbacks = None,
    max_concurrency: MaxConcurrency = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    json: JsonOption = False,
) -> None:
    """Create a config."""
    body = _fields(model_name=model, backend_type=backend_type, endpoint_url=endpoint)
    body |= _config_fields(
        backend_model, max_tokens, temperature, timeout, priority, description,
        api_key, endpoints, fallbacks, max_concurrency,
    )  # fmt: skip
    if disabled:
        body["enabled"] = False
    with reporting(), AdminClient.from_settings() as client:
        row = client.create_backend(body)
    _done(row, json, f"Created {row['model_name']} (id {row['id']}).")


@app.command()
def update(
    target: Target,
    model_name: ModelName = None,
    backend_type: BackendType = None,
    endpoint: Endpoint = None,
    backend_model: BackendModel = None,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    timeout: Timeout = None,
    priority: Priority = None,
    description: Description = None,
    api_key: ApiKey = None,
    endpoints: Servers = None,
    fallbacks: Fallbacks = None,
    max_concurrency: MaxConcurrency = None,
    json: JsonOption = False,
) -> None:
    """Change the given fields of a config; the others stay."""
    body = _fields(model_name=model_name, backend_type=backend_type, endpoint_url=endpoint)
    body |= _config_fields(
        backend_model, max_tokens, temperature, timeout, priority, description,
        api_key, endpoints, fallbacks, max_concurrency,
    )  # fmt: skip
    if not body:
        raise typer.BadParameter("give at least one field to change, e.g. --url")
    with reporting(), AdminClient.from_settings() as client:
        row = client.update_backend(client.find_backend(target)["id"], body)
    _done(row, json, f"Updated {row['model_name']} (id {row['id']}).")


@app.command()
def toggle(target: Target, json: JsonOption = False) -> None:
    """Enable a disabled config, or disable an enabled one."""
    with reporting(), AdminClient.from_settings() as client:
        result = client.toggle_backend(client.find_backend(target)["id"])
    _done(result, json, f"{result['model_name']}: {result['message'].lower()}.")


@app.command()
def delete(target: Target, yes: YesOption = False, json: JsonOption = False) -> None:
    """Delete a config (asks first unless --yes); its model then goes to the default Ollama."""
    with reporting(), AdminClient.from_settings() as client:
        row = client.find_backend(target)
        if not yes and not typer.confirm(
            f"Delete the config of {row['model_name']!r} (id {row['id']})?", default=False
        ):
            console.print("Nothing deleted.")
            raise typer.Exit(1)
        result = client.delete_backend(row["id"])
    _done(result, json, f"Deleted {row['model_name']} (id {row['id']}).")


def _done(value: dict[str, Any], json: bool, message: str) -> None:
    if json:
        print_json(value)
    else:
        console.print(message, markup=False)
