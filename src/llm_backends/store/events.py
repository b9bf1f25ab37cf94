"""In-process notification of config changes.

The Admin API publishes after every committed write; the gateway's router subscribes to drop
its cached config. A PostgreSQL LISTEN/NOTIFY bridge can publish here too, to reach replicas.
"""

from __future__ import annotations

from collections.abc import Callable

ConfigListener = Callable[[str | None], None]


class ConfigChanges:
    def __init__(self) -> None:
        self._listeners: list[ConfigListener] = []

    def subscribe(self, listener: ConfigListener) -> None:
        self._listeners.append(listener)

    def publish(self, model_name: str | None) -> None:
        """`model_name=None` means "anything may have changed"."""
        for listener in self._listeners:
            listener(model_name)
