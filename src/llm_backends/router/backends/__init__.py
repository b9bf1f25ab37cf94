"""Wire-protocol backends, one module each. A new backend type is one new module here.

Each module defines a `Backend` subclass with a `kind`; the registry finds them by import,
so the Admin API's allowed `backend_type` values follow the modules present.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from llm_backends.router.backends.base import Backend

#: Not a wire protocol but a routing policy: MLX first, then Ollama (see router.fallback).
AUTO = "auto"


@cache
def backend_classes() -> dict[str, type[Backend]]:
    """Every backend class in this package, by its `kind` (computed once: modules don't change)."""
    classes: dict[str, type[Backend]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        # `base` is the contract; `_name` modules are shared helpers, not protocols.
        if module_info.name == "base" or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Backend)
                and value is not Backend
                and value.__module__ == module.__name__
                and getattr(value, "kind", None)
            ):
                classes[value.kind] = value
    return classes


@cache
def backend_capabilities() -> dict[str, frozenset[str]]:
    """backend_type -> the optional features it honours (see router.capabilities)."""
    return {kind: cls.capabilities for kind, cls in backend_classes().items()}


def backend_types() -> list[str]:
    """The allowed `backend_type` values: every wire protocol plus `auto`."""
    return sorted([*backend_classes(), AUTO])
