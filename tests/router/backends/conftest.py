"""Fixtures of the backend tests. The fake servers and `mlx_server` come from
tests/fakes/fixtures.py through a parent conftest (one import per session, or the
session-scoped servers would start once per importing conftest).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llm_backends.router.transport import HttpPool


@pytest.fixture
async def client() -> AsyncIterator[HttpPool]:
    """The connection pool backends are given in the router (one per event loop)."""
    pool = HttpPool(asyncio.get_running_loop())
    try:
        yield pool
    finally:
        await pool.close()
