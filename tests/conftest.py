"""Shared test fixtures. Names below are stable: other suites depend on them.

Database fixtures (SQLite always; PostgreSQL and MariaDB when reachable):

* `db_driver` - parametrised "sqlite" | "pgsql" (mark `pg`) | "mysql" (mark `mysql`).
  Any test or fixture using it runs once per driver.
* `db_data_dir` - the data directory to pass to `Database.open` (a fresh tmp dir).
* `db_settings` - `DatabaseSettings` for `db_driver` pointing at a fresh, EMPTY namespace
  (no tables): a new SQLite file, a new PostgreSQL schema or a new MariaDB database named
  `meerkat_test_<random>`, dropped after the test.
* `database` - an open `meerkat.db.Database` on `db_settings` with the schema created;
  closed after the test.
* `make_db_settings` - `await make_db_settings(driver)`: the same as `db_settings` for a
  driver of your choice (e.g. to parametrise differently); any number per test.
* `make_database` - `await make_database(driver, create_schema=True, **overrides)`: an open
  `Database` on a fresh namespace (overrides go to `DatabaseSettings`, e.g. workers=1).

Servers: PostgreSQL 127.0.0.1:5432 user `postgres` (trust) database `test`; MariaDB
127.0.0.1:3306 user `root`, empty password, database `test`. Override with the environment
variables MEERKAT_TEST_PG_HOST/PORT/USER/PASSWORD/DATABASE and MEERKAT_TEST_MYSQL_...
When a server is absent its tests are skipped with the reason, unless CI=true: then they
fail, so CI cannot silently skip them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from meerkat.db import Database, DatabaseSettings, DatabaseUnavailable

DB_DRIVERS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("pgsql", id="pgsql", marks=pytest.mark.pg),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]

_ENV_PREFIX = {"pgsql": "MEERKAT_TEST_PG_", "mysql": "MEERKAT_TEST_MYSQL_"}
_DEFAULTS = {
    "pgsql": {"HOST": "127.0.0.1", "PORT": "5432", "USER": "postgres", "DATABASE": "test"},
    "mysql": {"HOST": "127.0.0.1", "PORT": "3306", "USER": "root", "DATABASE": "test"},
}


def server_settings(driver: str) -> DatabaseSettings:
    """Settings for the shared test server's base database (`test`)."""

    def env(key: str) -> str:
        return os.environ.get(_ENV_PREFIX[driver] + key, _DEFAULTS[driver].get(key, ""))

    return DatabaseSettings(
        driver=driver,  # type: ignore[arg-type]
        host=env("HOST"),
        port=int(env("PORT")),
        username=env("USER"),
        password=env("PASSWORD"),
        database=env("DATABASE"),
        workers=2,
        connect_timeout=3.0,
        query_timeout=10.0,
    )


def _absent(driver: str, reason: str) -> None:
    message = f"{driver} test server unavailable ({reason})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def _db_server_problems() -> dict[str, str]:
    """driver -> why its server could not be used (so later tests skip without waiting)."""
    return {}


@pytest.fixture(params=DB_DRIVERS)
def db_driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture
async def make_db_settings(
    db_data_dir: Path, _db_server_problems: dict[str, str]
) -> AsyncIterator[Callable[..., Awaitable[DatabaseSettings]]]:
    dropped: list[tuple[DatabaseSettings, str]] = []

    async def make(driver: str) -> DatabaseSettings:
        name = f"meerkat_test_{secrets.token_hex(6)}"
        if driver == "sqlite":
            return DatabaseSettings(driver="sqlite", database=f"{name}.sqlite3")
        if driver in _db_server_problems:
            _absent(driver, _db_server_problems[driver])
        base = server_settings(driver)
        try:
            admin = await Database.open(base, db_data_dir)
        except DatabaseUnavailable as exc:
            _db_server_problems[driver] = str(exc)
            _absent(driver, str(exc))
        try:
            if driver == "pgsql":
                await admin.execute(f"CREATE SCHEMA {name}")
            else:
                await admin.execute(
                    f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
        finally:
            await admin.close()
        dropped.append((base, name))
        if driver == "pgsql":
            return base.replace(schema=name)
        return base.replace(database=name)

    yield make
    for base, name in dropped:
        admin = await Database.open(base, db_data_dir)
        try:
            if base.driver == "pgsql":
                await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            else:
                await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        finally:
            await admin.close()


@pytest.fixture
async def make_database(
    make_db_settings: Callable[..., Awaitable[DatabaseSettings]], db_data_dir: Path
) -> AsyncIterator[Callable[..., Awaitable[Database]]]:
    opened: list[Database] = []

    async def make(driver: str, create_schema: bool = True, **overrides: Any) -> Database:
        settings = await make_db_settings(driver)
        if overrides:
            settings = settings.replace(**overrides)
        db = await Database.open(settings, db_data_dir)
        opened.append(db)
        if create_schema:
            await db.create_schema()
        return db

    yield make
    for db in opened:
        await db.close()


@pytest.fixture
async def db_settings(
    db_driver: str, make_db_settings: Callable[..., Awaitable[DatabaseSettings]]
) -> DatabaseSettings:
    return await make_db_settings(db_driver)


@pytest.fixture
async def database(db_driver: str, make_database: Callable[..., Awaitable[Database]]) -> Database:
    return await make_database(db_driver)
