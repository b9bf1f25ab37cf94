"""Fixtures of the backend tests. The fake servers and `mlx_server` come from
tests/fakes/fixtures.py through a parent conftest (one import per session, or the
session-scoped servers would start once per importing conftest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session
