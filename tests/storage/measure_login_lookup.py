"""Measure the login lookup (`SqlUserStore.get_password`: one primary-key SELECT, one round
trip) on each driver. Not a test; run: `.venv/bin/python tests/storage/measure_login_lookup.py`.

Uses the same servers as the test suite (PostgreSQL 127.0.0.1:5432 `postgres`/`test`,
MariaDB 127.0.0.1:3306 `root`/`test`) in a throwaway schema/database; absent servers are
reported and skipped.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from meerkat.db import Database, DatabaseSettings, DatabaseUnavailable
from meerkat.stores import SqlUserStore

USERS = 10_000
LOOKUPS = 5_000
RECORD = "==MULTI_SCRAM==,4096,===SHA1===" + "A" * 80 + ",==SHA256==" + "B" * 120


async def measure(settings: DatabaseSettings, data_dir: Path) -> str:
    db = await Database.open(settings, data_dir)
    try:
        await db.create_schema()
        store = SqlUserStore(db)
        async with db.transaction() as tx:
            for i in range(USERS):
                await tx.execute(
                    "INSERT INTO users (server, username, password, pass_details) "
                    "VALUES (?, ?, '', ?)",
                    "localhost",
                    f"user{i}",
                    RECORD,
                )
        for i in range(200):  # warm up: connection, prepared statement, caches
            await store.get_password("localhost", f"user{i}")
        samples = []
        for i in range(LOOKUPS):
            name = f"user{(i * 7919) % USERS}"
            started = time.perf_counter()
            assert await store.get_password("localhost", name) == RECORD
            samples.append(time.perf_counter() - started)
        samples.sort()
        started = time.perf_counter()
        await asyncio.gather(
            *(store.get_password("localhost", f"user{i % USERS}") for i in range(LOOKUPS))
        )
        rate = LOOKUPS / (time.perf_counter() - started)
        ms = [s * 1000 for s in samples]
        return (
            f"{settings.driver:6} median {statistics.median(ms):.3f} ms  "
            f"p99 {ms[int(len(ms) * 0.99)]:.3f} ms  "
            f"concurrent ({settings.workers} connections) {rate:,.0f} lookups/s"
        )
    finally:
        await db.close()


async def main() -> None:
    name = f"meerkat_bench_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        print(await measure(DatabaseSettings(driver="sqlite"), data_dir))
        servers = {
            "pgsql": DatabaseSettings(driver="pgsql", username="postgres", database="test"),
            "mysql": DatabaseSettings(driver="mysql", username="root", database="test"),
        }
        for driver, base in servers.items():
            try:
                admin = await Database.open(base, data_dir)
            except DatabaseUnavailable as exc:
                print(f"{driver:6} skipped: {exc}", file=sys.stderr)
                continue
            create = f"CREATE SCHEMA {name}" if driver == "pgsql" else f"CREATE DATABASE {name}"
            drop = f"DROP SCHEMA {name} CASCADE" if driver == "pgsql" else f"DROP DATABASE {name}"
            await admin.execute(create)
            try:
                target = (
                    base.replace(schema=name) if driver == "pgsql" else base.replace(database=name)
                )
                print(await measure(target, data_dir))
            finally:
                await admin.execute(drop)
                await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
