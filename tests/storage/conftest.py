"""Fixtures of the store contract suite: `stores` is one `Stores` bundle per backend
(memory, sqlite, pgsql, mysql); every contract test runs against each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from meerkat.db import Database
from meerkat.stores import Stores, memory_stores, sql_stores

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("pgsql", id="pgsql", marks=pytest.mark.pg),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def stores(backend: str, make_database: Callable[..., Awaitable[Database]]) -> Stores:
    if backend == "memory":
        return memory_stores()
    return sql_stores(await make_database(backend))
