"""The HTTP CLI against a real server process (and fake inference servers)."""

from __future__ import annotations

from tests.fakes.operator_fixtures import default_ollama, fake_backend, server

__all__ = ["default_ollama", "fake_backend", "server"]  # fixtures, for the tests here
