"""`llm-backends ps` (what each server is doing) and `llm-backends check` (probe every enabled
config: reachable, has the model, one tiny generation; exit 1 when any fails)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx
import typer

from llm_backends.cli_commands.client import AdminClient, ClientError
from llm_backends.cli_commands.output import (
    JsonOption,
    console,
    fail,
    ms,
    print_json,
    reporting,
    table,
    yes_no,
)

PS_COLUMNS = ["Model", "Server", "Healthy", "In flight", "Since", "Probe", "Last error"]


def ps(json: JsonOption = False) -> None:
    """Each server's health and requests in flight (from the server's status endpoint)."""
    with reporting(), AdminClient.from_settings() as client:
        status = client.status()
    if status is None:
        fail("this server has no status endpoint (/api/llm-backends/status): upgrade it")
    if json:
        print_json(status)
        return
    rows: list[list[Any]] = []
    for config in status.get("configs", []):
        name = config["model_name"] + ("" if config.get("enabled", True) else " (disabled)")
        for server in config.get("servers", []):
            rows.append(_server_row(name, server))
    for server in status.get("default_servers", []):
        rows.append(_server_row("(default)", server))
    console.print(table(None, PS_COLUMNS, rows))


def _server_row(name: str, server: dict[str, Any]) -> list[Any]:
    return [
        name,
        server.get("url"),
        yes_no(server.get("healthy")),
        server.get("in_flight", 0),
        server.get("since"),
        ms(server.get("probe_latency_ms")),
        server.get("last_error"),
    ]


@dataclass
class CheckResult:
    model: str
    backend_type: str
    endpoint: str
    reachable: bool | None = None
    has_model: bool | None = None
    generation: bool | None = None
    backend: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.reachable) and self.has_model is not False and bool(self.generation)


def _probe_directly(config: dict[str, Any]) -> tuple[bool, bool | None, str | None]:
    """Without a status endpoint: ask the server itself for its models (from this machine)."""
    url = config["endpoint_url"].rstrip("/")
    ollama = config["backend_type"] == "ollama"
    path = "/api/tags" if ollama else "/v1/models"
    try:
        response = httpx.get(url + path, timeout=5.0)
    except httpx.HTTPError as error:
        return False, None, f"cannot reach {url}: {type(error).__name__}"
    if response.status_code >= 400:
        return True, None, f"{path} answered {response.status_code}"
    try:
        body = response.json()
        items = body.get("models" if ollama else "data") or []
        names = {str(item.get("name") or item.get("model") or item.get("id")) for item in items}
    except (ValueError, AttributeError):
        return True, None, f"{path} answered something else than a model list"
    return True, _has(config, names), None


def _has(config: dict[str, Any], names: set[str]) -> bool | None:
    wanted = config.get("backend_model") or config["model_name"]
    if config["backend_type"] == "mlx" and not config.get("backend_model"):
        return None  # mlx serves the model it was started with
    if not names:
        return None
    return wanted in names or (":" not in wanted and f"{wanted}:latest" in names)


def _from_status(
    config: dict[str, Any], status: dict[str, Any]
) -> tuple[bool | None, bool | None, str | None]:
    for entry in status.get("configs", []):
        if entry.get("model_name") != config["model_name"]:
            continue
        servers = entry.get("servers") or []
        if not any(s.get("since") for s in servers):
            return None, None, None  # not probed yet: ask the server directly
        healthy = [s for s in servers if s.get("healthy")]
        if not healthy:
            errors = "; ".join(s.get("last_error") or "unhealthy" for s in servers)
            return False, None, errors or "no server"
        names = {m for s in healthy for m in s.get("models") or []}
        return True, _has(config, names), None
    return None, None, None


def check(json: JsonOption = False) -> None:
    """Probe every enabled config; exit status 1 when any fails (for cron and CI)."""
    with reporting(), AdminClient.from_settings() as client:
        configs = client.list_backends(enabled_only=True)
        status = client.status()
        results = [_check_one(client, config, status) for config in configs]
    if json:
        print_json([{**asdict(r), "ok": r.ok} for r in results])
    elif not results:
        console.print("No enabled configs to check.")
    else:
        console.print(
            table(
                None,
                [
                    "Model",
                    "Type",
                    "Endpoint",
                    "Reachable",
                    "Has model",
                    "Generation",
                    "Answered by",
                    "Detail",
                ],
                [
                    [
                        r.model,
                        r.backend_type,
                        r.endpoint,
                        yes_no(r.reachable),
                        yes_no(r.has_model),
                        yes_no(r.generation, "ok", "failed"),
                        r.backend,
                        r.detail,
                    ]
                    for r in results
                ],
            )
        )
    failed = [r.model for r in results if not r.ok]
    if failed:
        if not json:
            console.print(
                f"{len(failed)} of {len(results)} failed: {', '.join(failed)}", markup=False
            )
        raise typer.Exit(1)


def _check_one(
    client: AdminClient, config: dict[str, Any], status: dict[str, Any] | None
) -> CheckResult:
    result = CheckResult(config["model_name"], config["backend_type"], config["endpoint_url"])
    found = _from_status(config, status) if status is not None else (None, None, None)
    if found[0] is None:
        found = _probe_directly(config)
    result.reachable, result.has_model, result.detail = found
    if result.reachable is False:
        return result
    try:
        result.backend, _ = client.complete(config["model_name"], "Say OK.", max_tokens=1)
        result.generation = True
    except ClientError as error:
        result.generation = False
        result.detail = str(error) if error.status is None else f"{error.status}: {error}"
    return result
