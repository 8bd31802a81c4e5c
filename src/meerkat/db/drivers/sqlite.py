"""SQLite through aiosqlite (one thread per connection), in WAL mode.

WAL lets readers proceed while one writer writes. Writers still serialise on the file, so
every connection waits up to `query_timeout` for the lock (`busy_timeout`) and transactions
start with `BEGIN IMMEDIATE`: taking the write lock up front avoids the deadlock of two
readers both trying to upgrade (which SQLite reports as an immediate SQLITE_BUSY).

Every statement is one trip to the connection's thread (a future, a queue put, a wake-up of
the event loop): `execute` runs the statement, reads the row count and closes the cursor in
that one trip, where aiosqlite's `Cursor` API needs two; `fetchall` likewise, without the
awaitable result object aiosqlite's `execute_fetchall` wraps around that trip.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable
from pathlib import Path

import aiosqlite

from meerkat.db.drivers.base import Params, Row
from meerkat.db.errors import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    TransactionConflict,
)
from meerkat.db.settings import DatabaseSettings


def _translate(exc: sqlite3.Error) -> DatabaseError:
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(str(exc))
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return TransactionConflict(f"sqlite: {exc}")
    return DatabaseError(f"sqlite: {exc}")


def _rowcount(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    """Run one statement on the connection's own thread; the number of rows it changed."""
    cursor = conn.execute(sql, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def _rows(conn: sqlite3.Connection, sql: str, params: Params) -> list[Row]:
    """Run one query on the connection's own thread; its rows (tuples: no row factory)."""
    cursor = conn.execute(sql, params)
    try:
        rows: list[Row] = cursor.fetchall()
        return rows
    finally:
        cursor.close()


class SqliteConnection:
    """One aiosqlite connection in autocommit mode (we issue BEGIN ourselves)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._closed = False

    @classmethod
    async def connect(cls, settings: DatabaseSettings, data_dir: Path) -> SqliteConnection:
        path = Path(settings.database)
        if not path.is_absolute():
            path = data_dir / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(f"cannot create directory for {path}: {exc}") from exc
        timeout = settings.query_timeout
        try:
            conn = await aiosqlite.connect(path, isolation_level=None, timeout=timeout)
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open sqlite database {path}: {exc}") from exc
        self = cls(conn)
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        except sqlite3.Error as exc:
            await self.close()
            raise DatabaseUnavailable(f"cannot use sqlite database {path}: {exc}") from exc
        return self

    async def execute(self, sql: str, params: Params) -> int:
        try:
            # aiosqlite's `_execute` (pinned version) runs a function on the connection's
            # thread; its public API would take a second trip to close the cursor.
            count: int = await self._conn._execute(  # type: ignore[no-untyped-call]
                _rowcount, self._conn._conn, sql, params
            )
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return max(count, 0)

    async def fetchall(self, sql: str, params: Params) -> list[Row]:
        try:
            rows: list[Row] = await self._conn._execute(  # type: ignore[no-untyped-call]
                _rows, self._conn._conn, sql, params
            )
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return rows

    async def insert_id(self, sql: str, params: Params, id_column: str) -> int:
        rows = await self.fetchall(f"{sql} RETURNING {id_column}", params)
        return int(rows[0][0])

    async def script(self, sql: str) -> None:
        try:
            await self._conn.executescript(sql)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def begin(self) -> None:
        await self.execute("BEGIN IMMEDIATE", ())

    async def commit(self) -> None:
        await self.execute("COMMIT", ())

    async def rollback(self) -> None:
        await self.execute("ROLLBACK", ())

    def is_usable(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._conn.close()

    def abort(self) -> Awaitable[object] | None:
        if self._closed:
            return None
        self._closed = True
        # The worker thread closes the file once its current statement ends.
        return self._conn.stop()
