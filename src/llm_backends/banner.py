"""The one banner `llm-backends serve` prints at start: where everything is."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from sqlalchemy.engine import make_url

from llm_backends.settings import Settings


def _version() -> str:
    try:
        return version("llm-backends")
    except PackageNotFoundError:
        return "(source)"


def display_database_url(url: str) -> str:
    """The database URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL fails at connect with its own error
        return url.split("@", 1)[-1] if "@" in url else url


def token_hint(settings: Settings) -> str:
    if settings.admin_api_token is not None:
        return "export TOKEN=$ADMIN_API_TOKEN   (the bootstrap token you set)"
    if settings.token_file.exists():
        return f"export TOKEN=$(cat {settings.token_file})"
    return "llm-backends token ensure   (writes one to " + str(settings.token_file) + ")"


def banner(settings: Settings, host: str, port: int) -> str:
    """Multi-line text; printed to stderr so stdout stays one JSON object per line."""
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    base = f"http://{shown}:{port}"
    rows = [
        ("Admin page", f"{base}/ui/"),
        ("Admin API", f"{base}/api/llm-backends"),
        ("API docs", f"{base}/docs  (ReDoc: {base}/redoc)"),
        ("OpenAI API", f"{base}/v1  (e.g. OpenAI(base_url=\"{base}/v1\"))"),
        ("Ollama API", f"{base}  (e.g. OLLAMA_HOST={base})"),
        ("Database", display_database_url(settings.database_url)),
        ("State dir", str(settings.llm_backends_home)),
        ("Admin token", token_hint(settings)),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"llm-backends {_version()} listening on {base}"]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    return "\n".join(lines)
