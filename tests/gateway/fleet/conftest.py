"""The fleet fixtures (tests/fakes/fleet.py)."""

from tests.fakes.fleet import openai_pair, trio, trio_servers  # noqa: F401
