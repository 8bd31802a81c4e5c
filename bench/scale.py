"""The `scale` scenario's database: 100,000 users in a PostgreSQL schema, made and dropped.

Why PostgreSQL and not the SQLite file the other scenarios use: the scale server runs 8
workers (one process may hold at most 20,000 open files here), and with SQLite every login
takes the database's single write lock (mod_offline pops the offline queue in a write
transaction even when it is empty); eight processes on two busy cores then queue for that
lock until queries time out (5 s) and logins fail. A multi-worker deployment uses a
database server, so the benchmark does too.

The users are written straight into the table (bench/db/targets.py `provision`): every user
gets the same SCRAM record (Meerkat's defaults: SHA-1, SHA-256, SHA-512 keys, 10,000
iterations), so provisioning takes seconds, not the half hour of 100,000 registrations with
their own PBKDF2 runs, and the generator's SaltedPassword cache needs one entry. The schema
is dropped again after the run: nothing is left on the shared database server.

Connection: the test suite's server (127.0.0.1:5432, user postgres, database test, or the
MEERKAT_TEST_PG_* variables), schema `meerkat_bench_scale`; meerkat-scale.toml says the same.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from db.targets import provision, server_settings

from meerkat.db import Database

SCHEMA = "meerkat_bench_scale"

__all__ = ["SCHEMA", "create_users", "drop_users"]


async def _create(users: int) -> None:
    base = server_settings("pgsql")
    with tempfile.TemporaryDirectory() as workdir:
        admin = await Database.open(base, Path(workdir))
        try:
            await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            await admin.execute(f"CREATE SCHEMA {SCHEMA}")
        finally:
            await admin.close()
        await provision(base.replace(schema=SCHEMA), Path(workdir), users)


async def _drop() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        admin = await Database.open(server_settings("pgsql"), Path(workdir))
        try:
            await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        finally:
            await admin.close()


def create_users(users: int) -> None:
    """A fresh schema with Meerkat's tables and user1..userN (password "secret")."""
    asyncio.run(_create(users))


def drop_users() -> None:
    """Drop the schema and everything in it."""
    asyncio.run(_drop())
