"""Fixtures of the cluster suite (helpers live in cluster_harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cluster_harness import Harness


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = Harness()
    try:
        yield harness
    finally:
        await harness.close()
