"""Ollama-shaped descriptions of models whose backend is not an Ollama: `/api/show` answers
built from the config and what the server reports (`/v1/models`: vLLM's `max_model_len`), and
`/api/tags` / `/v1/models` entries.

Clients read these fields: Continue takes `num_ctx` and `stop` from `parameters` and looks for
`.Suffix` in `template`; litellm looks for "tools" in `template`; Open WebUI and the `ollama`
CLI read `model_info["<architecture>.context_length"]` and `capabilities`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from llm_backends.router.types import BackendConfig

#: Ollama writes parameters as `%-30s %v` lines.
_PARAM_WIDTH = 30
#: What OpenAI-protocol servers take besides plain prompts (tool calls: vLLM, llama.cpp
#: with --jinja, mlx_lm.server through its chat template).
_OPENAI_CAPABILITIES = ["completion", "tools"]


def details(backend_type: str, family: str = "") -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": backend_type,
        "family": family,
        "families": [family] if family else None,
        "parameter_size": "",
        "quantization_level": "",
    }


def built_show(config: BackendConfig, kind: str, entry: dict[str, Any] | None) -> dict[str, Any]:
    """`/api/show` for a model an OpenAI-protocol server (`kind`) answers; `entry` is that
    server's `/v1/models` entry for it, when it listed one."""
    context = _context_length(entry)
    params = [
        f"{'temperature':<{_PARAM_WIDTH}} {config.temperature_default:g}",
        f"{'num_predict':<{_PARAM_WIDTH}} {config.max_tokens}",
    ]
    if context:
        params.append(f"{'num_ctx':<{_PARAM_WIDTH}} {context}")
    served = (entry or {}).get("id") or config.backend_model
    model_info: dict[str, Any] = {
        "general.architecture": kind,
        "general.basename": config.model_name,
        "llm_backends.backend_type": config.backend_type,
    }
    if config.backend_model:
        model_info["llm_backends.backend_model"] = config.backend_model
    if context:
        model_info[f"{kind}.context_length"] = context
    modelfile = f"# Served by llm-backends from an OpenAI-compatible server ({kind})\n"
    if served:
        modelfile += f"FROM {served}\n"
    return {
        "license": "",
        "modelfile": modelfile,
        "parameters": "\n".join(params),
        "template": "{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}",
        "details": details(kind, kind),
        "model_info": model_info,
        "capabilities": list(_OPENAI_CAPABILITIES),
        "modified_at": _iso(_created(entry)),
    }


def config_tag(name: str, backend_type: str, updated_at: datetime, key: str) -> dict[str, Any]:
    """An `/api/tags` entry for a config; the digest changes whenever the config does."""
    return {
        "name": name,
        "model": name,
        "modified_at": updated_at.isoformat().replace("+00:00", "Z"),
        "size": 0,
        "digest": hashlib.sha256(key.encode()).hexdigest(),
        "details": details(backend_type),
    }


def openai_entry(name: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by}


def created_of_tag(entry: dict[str, Any]) -> int:
    """An Ollama `modified_at` (RFC 3339, maybe with nanoseconds) as Unix seconds; 0 if bad."""
    value = str(entry.get("modified_at") or "")
    try:
        head, _, _ = value.partition(".")
        if "." in value:
            zone = value[len(head) :].lstrip(".0123456789") or "Z"
            value = head + zone
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _context_length(entry: dict[str, Any] | None) -> int | None:
    value = (entry or {}).get("max_model_len")
    return value if isinstance(value, int) and value > 0 else None


def _created(entry: dict[str, Any] | None) -> int | None:
    value = (entry or {}).get("created")
    return value if isinstance(value, int) and value > 0 else None


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
