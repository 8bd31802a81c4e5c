"""`Database`: one pool of connections to SQLite, PostgreSQL or MySQL/MariaDB.

Queries are written once with `?` placeholders (or as `Upsert` / `InsertIgnore` values) and
every parameter is bound by the driver, never formatted into the SQL text.

Failure model:
* each statement is bounded by `query_timeout`, counted from when it has a connection;
  past it `QueryTimeout` (a `DatabaseUnavailable`) is raised, never a hang. A call queued
  for a connection waits its turn as long as the pool makes progress (a connection came
  back healthy within the last `query_timeout`), so a burst larger than the pool is
  served in order instead of failing on a deadline meant for one query;
* a lost connection raises `DatabaseUnavailable` and is dropped; the next call reconnects;
* reads outside a transaction are retried once on a fresh connection when the connection
  turned out to be dead, since repeating them is harmless; writes are not (a write may have
  been applied before the connection died).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from meerkat.db import drivers, versioning
from meerkat.db.dialect import DIALECTS, Dialect, Query
from meerkat.db.drivers.base import Connection, Row
from meerkat.db.errors import (
    DatabaseError,
    DatabaseUnavailable,
    QueryTimeout,
    TransactionConflict,
)
from meerkat.db.pool import Pool
from meerkat.db.settings import DatabaseSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Runner:
    """The four query verbs, shared by `Database` and `Transaction`."""

    dialect: Dialect
    _sql_cache: dict[Query, str]

    def _sql(self, query: Query) -> str:
        # Query constants are few and immutable: render each once per pool.
        text = self._sql_cache.get(query)
        if text is None:
            text = self._sql_cache[query] = self.dialect.sql(query)
        return text

    async def _run_fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        raise NotImplementedError

    async def fetchall(self, sql: Query, *params: object) -> list[Row]:
        """All rows of a query, as tuples."""
        return await self._run_fetch(self._sql(sql), params)

    async def fetchone(self, sql: Query, *params: object) -> Row | None:
        """The first row, or None."""
        rows = await self._run_fetch(self._sql(sql), params)
        return rows[0] if rows else None

    async def fetchval(self, sql: Query, *params: object) -> Any:
        """The first column of the first row, or None."""
        rows = await self._run_fetch(self._sql(sql), params)
        return rows[0][0] if rows else None


class Transaction(_Runner):
    """Statements on one connection between BEGIN and COMMIT (see `Database.transaction`)."""

    def __init__(
        self, conn: Connection, dialect: Dialect, timeout: float, sql_cache: dict[Query, str]
    ) -> None:
        self._conn = conn
        self.dialect = dialect
        self._timeout = timeout
        self._sql_cache = sql_cache

    async def _run_fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        async with _deadline(self._timeout):
            return await self._conn.fetchall(sql, params)

    async def execute(self, sql: Query, *params: object) -> int:
        """Run a statement; the number of affected rows."""
        async with _deadline(self._timeout):
            return await self._conn.execute(self._sql(sql), params)

    async def insert_id(self, sql: Query, *params: object, id_column: str = "id") -> int:
        """Run an INSERT; the auto-increment id of the new row."""
        async with _deadline(self._timeout):
            return await self._conn.insert_id(self._sql(sql), params, id_column)


class _deadline:
    """`async with _deadline(s):` is `asyncio.timeout(s)` raising `QueryTimeout` instead.

    The same rules as `asyncio.timeout` (expire by cancelling the task; a cancellation is the
    deadline's only when no other cancel request came meanwhile), without its state machine
    and generality: it wraps every query, and `asyncio.timeout` cost about as many bytecodes
    as the query's own path through the driver."""

    __slots__ = ("_cancelling", "_expired", "_handle", "_seconds", "_task")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._expired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a query deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            self._seconds, self._expire
        )

    def _expire(self) -> None:
        self._expired = True
        self._handle = None
        self._task.cancel()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and kind is asyncio.CancelledError
        ):
            raise QueryTimeout(f"the database did not answer within {self._seconds:g}s") from exc


class Database(_Runner):
    """A pool of connections plus the dialect to write portable queries."""

    def __init__(self, settings: DatabaseSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.dialect = DIALECTS[settings.driver]
        self._sql_cache = {}
        self._timeout = settings.query_timeout
        self._pool = Pool(self._connect, settings.workers)

    @classmethod
    async def open(cls, settings: DatabaseSettings, data_dir: Path) -> Database:
        """Connect once to check the settings; `DatabaseUnavailable` says what is wrong."""
        db = cls(settings, data_dir)
        try:
            async with asyncio.timeout(settings.connect_timeout + 1):
                first = await db._connect()
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                f"cannot reach {settings.describe()}: "
                f"no answer within {settings.connect_timeout:g}s"
            ) from exc
        db._pool.add_idle(first)
        log.info("db_opened database=%s", settings.describe())
        return db

    async def _connect(self) -> Connection:
        return await drivers.connect(self.settings, self.data_dir)

    async def close(self) -> None:
        """Close every connection."""
        await self._pool.close()

    def statistics(self) -> dict[str, int]:
        """Pool counters: size, idle, in_use."""
        return self._pool.statistics()

    async def _run_fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        try:
            async with self._pool.connection(self._timeout) as conn, _deadline(self._timeout):
                return await conn.fetchall(sql, params)
        except DatabaseUnavailable as exc:
            if isinstance(exc, QueryTimeout):
                raise
            # A read is safe to repeat; the pool has dropped the dead connections.
            log.info("db_read_retried reason=%s", exc)
            async with self._pool.connection(self._timeout) as conn, _deadline(self._timeout):
                return await conn.fetchall(sql, params)

    async def execute(self, sql: Query, *params: object) -> int:
        """Run a statement (autocommit); the number of affected rows."""
        text = self._sql(sql)
        async with self._pool.connection(self._timeout) as conn, _deadline(self._timeout):
            return await conn.execute(text, params)

    async def insert_id(self, sql: Query, *params: object, id_column: str = "id") -> int:
        """Run an INSERT; the auto-increment id of the new row."""
        text = self._sql(sql)
        async with self._pool.connection(self._timeout) as conn, _deadline(self._timeout):
            return await conn.insert_id(text, params, id_column)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """`async with db.transaction() as tx:` commits when the block ends, rolls back when
        it raises. Each statement in it has its own `query_timeout`."""
        async with self._pool.connection(self._timeout) as conn:
            async with _deadline(self._timeout):
                await conn.begin()
            try:
                yield Transaction(conn, self.dialect, self._timeout, self._sql_cache)
            except Exception as exc:
                # After a timeout the connection is mid-statement: the pool drops it instead.
                if conn.is_usable() and not isinstance(exc, DatabaseUnavailable):
                    try:
                        async with _deadline(self._timeout):
                            await conn.rollback()
                    except DatabaseError as rollback_exc:
                        log.info("db_rollback_failed reason=%s", rollback_exc)
                raise
            async with _deadline(self._timeout):
                await conn.commit()

    async def run_transaction(
        self, body: Callable[[Transaction], Awaitable[T]], attempts: int = 3
    ) -> T:
        """Run `body(tx)` in a transaction, re-running it from the start when the database
        reports a deadlock or serialization failure (`TransactionConflict`)."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as tx:
                    return await body(tx)
            except TransactionConflict as exc:
                if attempt == attempts:
                    raise
                log.info("db_transaction_retried reason=%s", exc)
        raise AssertionError("unreachable")

    async def script(self, sql: str) -> None:
        """Run a multi-statement script without parameters (schema files)."""
        timeout = max(self._timeout, 60)
        async with self._pool.connection(timeout) as conn, _deadline(timeout):
            await conn.script(sql)

    # schema management lives in `versioning`; these are the public entry points

    async def schema_version(self) -> int | None:
        """The applied schema version, or None when there is no Meerkat schema."""
        return await versioning.current_version(self)

    async def check_schema(self) -> None:
        """Raise `SchemaError` unless the schema is complete and at this code's version."""
        await versioning.check(self)

    async def create_schema(self) -> bool:
        """Create all tables from the dialect's schema file; False if a schema exists."""
        return await versioning.create(self)

    async def migrate(self) -> list[int]:
        """Apply pending migrations; the versions applied."""
        return await versioning.migrate(self)

    async def ensure_schema(self) -> None:
        """What the server runs at start: create/migrate when `settings.create_schema`,
        then `check_schema()`."""
        if self.settings.create_schema and not await self.create_schema():
            await self.migrate()
        await self.check_schema()
