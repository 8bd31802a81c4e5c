"""PostgreSQL through asyncpg.

asyncpg prepares and caches each statement, so a repeated query costs one round trip.
A backend killed by the server (`pg_terminate_backend`, restart) closes the socket; asyncpg
notices on the event loop, so `is_usable()` can tell the pool without any I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable

import asyncpg
import asyncpg.exceptions as pgerr

from meerkat.db.drivers.base import Params, Row, tls_context
from meerkat.db.errors import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    TransactionConflict,
)
from meerkat.db.settings import DatabaseSettings

_GONE = (
    pgerr.PostgresConnectionError,  # class 08
    pgerr.AdminShutdownError,
    pgerr.CrashShutdownError,
    pgerr.CannotConnectNowError,
    pgerr.TooManyConnectionsError,
    # the server killed the session while a statement was in flight: asyncpg's protocol
    # state machine gives up; the connection is unusable
    pgerr.InternalClientError,
    ConnectionError,
    OSError,
)
_ERRORS = (pgerr.PostgresError, asyncpg.InterfaceError, pgerr.InternalClientError, OSError)


class PgConnection:
    """One asyncpg connection."""

    def __init__(self, conn: asyncpg.Connection, where: str) -> None:
        self._conn = conn
        self._where = where

    @classmethod
    async def connect(cls, settings: DatabaseSettings) -> PgConnection:
        where = f"pgsql server {settings.host}:{settings.port}"
        server_settings = {"application_name": "meerkat"}
        if settings.schema:
            server_settings["search_path"] = settings.schema
        try:
            conn = await asyncpg.connect(
                host=settings.host,
                port=settings.port,
                user=settings.username or None,
                password=settings.password or None,
                database=settings.database,
                timeout=settings.connect_timeout,
                ssl=tls_context(settings) or False,
                server_settings=server_settings,
            )
        except pgerr.InvalidAuthorizationSpecificationError as exc:  # incl. bad password
            raise DatabaseUnavailable(
                f"{where} rejected the credentials of user {settings.username!r}: {exc}"
            ) from exc
        except pgerr.InvalidCatalogNameError as exc:
            raise DatabaseUnavailable(
                f"database {settings.database!r} does not exist on {where}: {exc}"
            ) from exc
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                f"cannot reach {where}: no answer within {settings.connect_timeout:g}s"
            ) from exc
        except (OSError, pgerr.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailable(f"cannot reach {where}: {exc}") from exc
        return cls(conn, where)

    def _translate(self, exc: Exception) -> DatabaseError:
        if isinstance(exc, _GONE) or (
            isinstance(exc, asyncpg.InterfaceError) and self._conn.is_closed()
        ):
            return DatabaseUnavailable(f"lost connection to {self._where}: {exc}")
        if isinstance(exc, pgerr.IntegrityConstraintViolationError):
            return IntegrityError(str(exc))
        if isinstance(exc, pgerr.TransactionRollbackError):
            return TransactionConflict(str(exc))
        return DatabaseError(f"pgsql: {type(exc).__name__}: {exc}")

    async def execute(self, sql: str, params: Params) -> int:
        try:
            status = await self._conn.execute(sql, *params)
        except _ERRORS as exc:
            raise self._translate(exc) from exc
        # "INSERT 0 3", "UPDATE 2", "DELETE 0", "CREATE TABLE"
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def fetchall(self, sql: str, params: Params) -> list[Row]:
        try:
            records = await self._conn.fetch(sql, *params)
        except _ERRORS as exc:
            raise self._translate(exc) from exc
        return [tuple(record) for record in records]

    async def insert_id(self, sql: str, params: Params, id_column: str) -> int:
        rows = await self.fetchall(f"{sql} RETURNING {id_column}", params)
        return int(rows[0][0])

    async def script(self, sql: str) -> None:
        await self.execute(sql, ())  # no parameters: simple protocol, many statements

    async def begin(self) -> None:
        await self.execute("BEGIN", ())

    async def commit(self) -> None:
        await self.execute("COMMIT", ())

    async def rollback(self) -> None:
        await self.execute("ROLLBACK", ())

    def is_usable(self) -> bool:
        return not self._conn.is_closed()

    async def close(self) -> None:
        try:
            await self._conn.close(timeout=1)
        except (*_ERRORS, TimeoutError):
            self._conn.terminate()

    def abort(self) -> Awaitable[object] | None:
        self._conn.terminate()
        return None
