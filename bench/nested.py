"""`get(results, "chat", "c32", "direct", "rps")`: a value deep in the results, or None."""

from __future__ import annotations

from typing import Any


def get(d: Any, *path: str) -> Any:
    """The value at `path` in nested dicts; None where a level is missing or not a dict."""
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d
