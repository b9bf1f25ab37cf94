"""Fixtures of the backend tests.

The fake-server fixtures come from tests/fakes/fixtures.py. Until tests/conftest.py imports
them, this conftest does; remove the import below once it does (otherwise the session-scoped
servers would start twice, once per conftest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.fixtures import *  # noqa: F403


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session
