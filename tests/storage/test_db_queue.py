"""Callers queued for a pool's connections: a burst larger than the pool is served in turn,
a hung database still fails every queued caller within about `query_timeout`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from meerkat.db import Database, QueryTimeout

SERVER_DRIVERS = [
    pytest.param("pgsql", id="pgsql", marks=pytest.mark.pg),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]
SLEEP = {"pgsql": "SELECT pg_sleep(?)", "mysql": "SELECT SLEEP(?)"}
QUERY_TIMEOUT = 0.5


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_a_burst_larger_than_the_pool_waits_its_turn_instead_of_timing_out(
    driver: str, make_database: Callable[..., Awaitable[Database]]
) -> None:
    db = await make_database(driver, workers=1, query_timeout=QUERY_TIMEOUT)
    calls = 20  # 20 x 0.05 s on one connection: the last waits twice the query deadline
    results = await asyncio.gather(
        *(db.fetchval(SLEEP[driver], 0.05) for _ in range(calls)), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_callers_queued_behind_a_hung_query_fail_within_the_query_deadline(
    driver: str, make_database: Callable[..., Awaitable[Database]]
) -> None:
    db = await make_database(driver, workers=1, query_timeout=QUERY_TIMEOUT)
    started = time.monotonic()
    results = await asyncio.gather(
        *(db.fetchval(SLEEP[driver], 30) for _ in range(10)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert all(isinstance(r, QueryTimeout) for r in results), results
    assert elapsed < 3 * QUERY_TIMEOUT
