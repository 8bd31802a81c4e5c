"""Throwaway databases for the benchmark: an SQLite file, a PostgreSQL schema or a MariaDB
database named `meerkat_bench_<random>` on the test servers (the same ones and environment
variables as the test suite), with the schema created and users provisioned in bulk."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from meerkat.auth import password as pw
from meerkat.db import Database, DatabaseSettings

DOMAIN = "localhost"
PASSWORD = "secret"
_ENV = {"pgsql": "MEERKAT_TEST_PG_", "mysql": "MEERKAT_TEST_MYSQL_"}
_DEFAULTS = {
    "pgsql": {"HOST": "127.0.0.1", "PORT": "5432", "USER": "postgres", "DATABASE": "test"},
    "mysql": {"HOST": "127.0.0.1", "PORT": "3306", "USER": "root", "DATABASE": "test"},
}
ADD_USER = "INSERT INTO users (server, username, password, pass_details) VALUES (?, ?, '', ?)"


def server_settings(driver: str) -> DatabaseSettings:
    def env(key: str) -> str:
        return os.environ.get(_ENV[driver] + key, _DEFAULTS[driver].get(key, ""))

    return DatabaseSettings(
        driver=driver,  # type: ignore[arg-type]
        host=env("HOST"),
        port=int(env("PORT")),
        username=env("USER"),
        password=env("PASSWORD"),
        database=env("DATABASE"),
        workers=10,
    )


@contextlib.asynccontextmanager
async def fresh_database(driver: str, workdir: Path) -> AsyncIterator[DatabaseSettings]:
    """Settings for a new empty namespace, dropped on exit (DatabaseUnavailable if the
    server is absent)."""
    name = f"meerkat_bench_{secrets.token_hex(4)}"
    if driver == "sqlite":
        yield DatabaseSettings(driver="sqlite", database=str(workdir / f"{name}.sqlite3"))
        return
    base = server_settings(driver)
    admin = await Database.open(base, workdir)
    try:
        if driver == "pgsql":
            await admin.execute(f"CREATE SCHEMA {name}")
            settings = base.replace(schema=name)
        else:
            await admin.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            settings = base.replace(database=name)
        try:
            yield settings
        finally:
            if driver == "pgsql":
                await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            else:
                await admin.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        await admin.close()


async def provision(settings: DatabaseSettings, workdir: Path, users: int) -> None:
    """Create the schema and users user1..userN (password "secret").

    Every user gets the same SCRAM record (one salt per hash): PBKDF2 runs once here and
    once in the load generator, which is what a benchmark of the server wants. The record
    holds the server's default hashes (SHA-1, SHA-256, SHA-512) at 10000 iterations.
    """
    record = pw.make_record(PASSWORD, ["sha", "sha256", "sha512"], 10000, lambda: os.urandom(16))
    db = await Database.open(settings, workdir)
    try:
        await db.create_schema()
        batch = 1000
        for start in range(1, users + 1, batch):
            async with db.transaction() as tx:
                for i in range(start, min(start + batch, users + 1)):
                    await tx.execute(ADD_USER, DOMAIN, f"user{i}", record)
    finally:
        await db.close()
