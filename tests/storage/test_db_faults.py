"""Outages: killed connections, a server that goes away and comes back, a hung server.

The promise: a query during an outage raises `DatabaseUnavailable` within `query_timeout`
(never hangs), and the pool reconnects by itself once the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tcp_proxy import TcpProxy

from meerkat.db import (
    Database,
    DatabaseSettings,
    DatabaseUnavailable,
    QueryTimeout,
    Transaction,
)
from ports import free_port

SERVER_DRIVERS = [
    pytest.param("pgsql", id="pgsql", marks=pytest.mark.pg),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]
COUNT_USERS = "SELECT COUNT(*) FROM users"
ADD_USER = "INSERT INTO users (server, username, password) VALUES (?, ?, '')"


async def session_id(runner: Database | Transaction) -> int:
    """The server-side id of the connection `runner` uses (the pool has one: workers=1)."""
    if runner.dialect.name == "pgsql":
        return int(await runner.fetchval("SELECT pg_backend_pid()"))
    return int(await runner.fetchval("SELECT CONNECTION_ID()"))


async def kill_session(admin: Database, victim_id: int) -> None:
    """From `admin`, kill one server session (as a DBA would)."""
    if admin.dialect.name == "pgsql":
        assert await admin.fetchval("SELECT pg_terminate_backend(?)", victim_id) is True
    else:
        await admin.execute(f"KILL {victim_id}")


@pytest.fixture(params=SERVER_DRIVERS)
def server_driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def proxy_settings(
    server_driver: str, make_db_settings: Callable[..., Awaitable[DatabaseSettings]]
) -> AsyncIterator[tuple[TcpProxy, DatabaseSettings]]:
    settings = await make_db_settings(server_driver)
    proxy = TcpProxy(settings.host, settings.port or 0)
    await proxy.start()
    try:
        yield proxy, settings.replace(host="127.0.0.1", port=proxy.port, query_timeout=1.5)
    finally:
        await proxy.close()


async def test_killed_connection_is_replaced_and_queries_go_on(
    server_driver: str, make_database: Callable[..., Awaitable[Database]]
) -> None:
    db = await make_database(server_driver, workers=1)
    admin = await make_database(server_driver, create_schema=False)
    await db.execute(ADD_USER, "localhost", "before")
    await kill_session(admin, await session_id(db))
    await asyncio.sleep(0.1)  # let the FIN arrive, as it would between two real requests
    # Reads are retried on a fresh connection, so this one already succeeds.
    assert await db.fetchval(COUNT_USERS) == 1
    assert await db.execute(ADD_USER, "localhost", "after") == 1
    assert await db.fetchval(COUNT_USERS) == 2


async def test_write_on_a_connection_killed_mid_use_fails_cleanly_then_recovers(
    server_driver: str, make_database: Callable[..., Awaitable[Database]]
) -> None:
    db = await make_database(server_driver, workers=1)
    admin = await make_database(server_driver, create_schema=False)
    await kill_session(admin, await session_id(db))
    # No pause: the pool may not have noticed yet. Either outcome is allowed...
    with contextlib.suppress(DatabaseUnavailable):
        await db.execute(ADD_USER, "localhost", "maybe")
    # ...but the next statements work.
    assert await db.execute(ADD_USER, "localhost", "surely") == 1
    assert await db.fetchval("SELECT COUNT(*) FROM users WHERE username = ?", "surely") == 1


async def test_killed_transaction_raises_unavailable_and_leaves_nothing_behind(
    server_driver: str, make_database: Callable[..., Awaitable[Database]]
) -> None:
    db = await make_database(server_driver, workers=1)
    admin = await make_database(server_driver, create_schema=False)
    with pytest.raises(DatabaseUnavailable):
        async with db.transaction() as tx:
            await tx.execute(ADD_USER, "localhost", "half")
            await kill_session(admin, await session_id(tx))
            await asyncio.sleep(0.1)
            await tx.execute(ADD_USER, "localhost", "other-half")
    assert await db.fetchval(COUNT_USERS) == 0


async def test_server_outage_raises_quickly_and_the_pool_recovers(
    proxy_settings: tuple[TcpProxy, DatabaseSettings], db_data_dir: Path
) -> None:
    proxy, settings = proxy_settings
    db = await Database.open(settings, db_data_dir)
    try:
        await db.create_schema()
        await db.execute(ADD_USER, "localhost", "a")
        await proxy.cut()
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable):
                await db.fetchval(COUNT_USERS)
            with pytest.raises(DatabaseUnavailable):
                await db.execute(ADD_USER, "localhost", "b")
            assert time.monotonic() - started < settings.query_timeout * 2
        await proxy.restore()
        assert await db.fetchval(COUNT_USERS) == 1
        assert await db.execute(ADD_USER, "localhost", "c") == 1
    finally:
        await db.close()


async def test_hung_server_raises_query_timeout_instead_of_hanging(
    proxy_settings: tuple[TcpProxy, DatabaseSettings], db_data_dir: Path
) -> None:
    proxy, settings = proxy_settings
    db = await Database.open(settings, db_data_dir)
    try:
        await db.create_schema()
        await proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            await db.fetchval(COUNT_USERS)
        elapsed = time.monotonic() - started
        assert settings.query_timeout * 0.9 < elapsed < settings.query_timeout + 1
        await proxy.restore()
        assert await db.fetchval(COUNT_USERS) == 0
    finally:
        await db.close()


@pytest.mark.parametrize("driver", ["pgsql", "mysql"])
async def test_opening_against_a_closed_port_fails_fast_saying_unreachable(
    driver: str, db_data_dir: Path
) -> None:
    settings = DatabaseSettings(driver=driver, port=free_port(), database="test")  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="cannot reach"):
        await Database.open(settings, db_data_dir)
    assert time.monotonic() - started < 2


async def test_opening_with_bad_credentials_says_so(
    server_driver: str,
    make_db_settings: Callable[..., Awaitable[DatabaseSettings]],
    db_data_dir: Path,
) -> None:
    settings = await make_db_settings(server_driver)
    bad = settings.replace(username="meerkat_no_such_user", password="wrong")
    with pytest.raises(DatabaseUnavailable, match="rejected the credentials"):
        await Database.open(bad, db_data_dir)


async def test_opening_an_unknown_database_says_so(
    server_driver: str,
    make_db_settings: Callable[..., Awaitable[DatabaseSettings]],
    db_data_dir: Path,
) -> None:
    settings = await make_db_settings(server_driver)
    bad = settings.replace(database="meerkat_no_such_database")
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        await Database.open(bad, db_data_dir)
