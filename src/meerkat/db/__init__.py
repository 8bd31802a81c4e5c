"""Storage layer: connection pools to SQLite, PostgreSQL and MySQL/MariaDB.

Public API::

    db = await Database.open(settings, data_dir)     # DatabaseSettings, pathlib.Path
    await db.ensure_schema()                          # create/migrate if asked, then check
    n = await db.execute("UPDATE t SET a = ? WHERE b = ?", 1, "x")
    rows = await db.fetchall(...); row = await db.fetchone(...); v = await db.fetchval(...)
    async with db.transaction() as tx: await tx.execute(...)
    await db.close()

Errors: `DatabaseUnavailable` (unreachable, refused, timed out: retry later),
`SchemaError`, `IntegrityError`, `TransactionConflict`, all `DatabaseError`s.
"""

from meerkat.db.database import Database, Transaction
from meerkat.db.dialect import Dialect, InsertIgnore, LockingSelect, Query, Upsert
from meerkat.db.errors import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    QueryTimeout,
    SchemaError,
    TransactionConflict,
)
from meerkat.db.settings import DatabaseSettings

__all__ = [
    "Database",
    "DatabaseError",
    "DatabaseSettings",
    "DatabaseUnavailable",
    "Dialect",
    "InsertIgnore",
    "IntegrityError",
    "LockingSelect",
    "Query",
    "QueryTimeout",
    "SchemaError",
    "Transaction",
    "TransactionConflict",
    "Upsert",
]
